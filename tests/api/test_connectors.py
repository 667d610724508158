from __future__ import annotations

from tests.factories import TRIVIAL_CODE

NEW_CODE = TRIVIAL_CODE.replace("[1, 2, 3]", "[4, 5]")


def test_it_lists_and_gets_connectors(member_api, stranger_api, connector):
    listed = member_api.get("/api/v1/connectors").json()
    assert [c["slug"] for c in listed] == [connector.slug]
    response = member_api.get(f"/api/v1/connectors/{connector.slug}")
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == connector.code and body["latest_version"] == 1
    assert stranger_api.get("/api/v1/connectors").json() == []


def test_it_filters_connectors_by_connection(owner_api, connector):
    assert owner_api.get("/api/v1/connectors?connection=other").json() == []
    slug = connector.connection.slug
    assert len(owner_api.get(f"/api/v1/connectors?connection={slug}").json()) == 1


def test_it_creates_a_connector(member_api, connection):
    response = member_api.post(
        "/api/v1/connectors",
        {"connection": connection.slug, "name": "Invoices", "code": TRIVIAL_CODE},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "invoices" and body["latest_version"] == 1


def test_it_explains_an_invalid_connector(member_api, connection):
    response = member_api.post(
        "/api/v1/connectors",
        {"connection": connection.slug, "name": "X", "code": "x", "interface": "cobol"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["type"] == "invalid"
    assert "interface" in response.json()["message"]


def test_it_updates_code_and_records_a_version(member_api, connector):
    response = member_api.patch(
        f"/api/v1/connectors/{connector.slug}",
        {"code": NEW_CODE, "packages": ""},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["code"] == NEW_CODE
    assert response.json()["latest_version"] == 2
    versions = member_api.get(f"/api/v1/connectors/{connector.slug}/versions").json()
    assert [v["number"] for v in versions] == [2, 1]
    version = member_api.get(f"/api/v1/connectors/{connector.slug}/versions/1").json()
    assert version["code"] == TRIVIAL_CODE
    missing = member_api.get(f"/api/v1/connectors/{connector.slug}/versions/9")
    assert missing.status_code == 404


def test_it_saves_no_version_when_nothing_changed(member_api, connector):
    response = member_api.patch(
        f"/api/v1/connectors/{connector.slug}", {}, content_type="application/json"
    )
    assert response.json()["latest_version"] == 1


def test_a_viewer_may_read_but_not_change(viewer_api, connector):
    assert viewer_api.get(f"/api/v1/connectors/{connector.slug}").status_code == 200
    assert viewer_api.get(f"/api/v1/connectors/{connector.slug}/versions").status_code == 200
    response = viewer_api.patch(
        f"/api/v1/connectors/{connector.slug}", {"code": NEW_CODE}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["type"] == "forbidden"
    response = viewer_api.post(
        "/api/v1/connectors",
        {"connection": connector.connection.slug, "name": "Mine", "code": TRIVIAL_CODE},
        content_type="application/json",
    )
    assert response.status_code == 403
    connector.refresh_from_db()
    assert connector.code == TRIVIAL_CODE


def test_a_stranger_gets_404(stranger_api, connector):
    assert stranger_api.get(f"/api/v1/connectors/{connector.slug}").status_code == 404
    assert stranger_api.get(f"/api/v1/connectors/{connector.slug}/versions").status_code == 404
    response = stranger_api.patch(
        f"/api/v1/connectors/{connector.slug}", {"code": NEW_CODE}, content_type="application/json"
    )
    assert response.status_code == 404
    response = stranger_api.post(
        "/api/v1/connectors",
        {"connection": connector.connection.slug, "name": "Mine", "code": TRIVIAL_CODE},
        content_type="application/json",
    )
    assert response.status_code == 404
