from __future__ import annotations

from connections.models import Connection
from tests.factories import make_connection


def test_it_lists_the_connections_a_user_may_see(owner_api, member_api, stranger_api, connection):
    assert [c["slug"] for c in owner_api.get("/api/v1/connections").json()] == [connection.slug]
    assert [c["slug"] for c in member_api.get("/api/v1/connections").json()] == [connection.slug]
    assert stranger_api.get("/api/v1/connections").json() == []


def test_it_never_returns_secret_credentials(owner, owner_api):
    connection = make_connection(
        owner=owner, name="Mixed", credentials='{"host": "db.example", "password": "pw-SECRET-9"}'
    )
    connection.secret_fields = ["password"]
    connection.save()
    response = owner_api.get(f"/api/v1/connections/{connection.slug}")
    assert response.status_code == 200
    assert "pw-SECRET-9" not in response.content.decode()
    fields = {f["name"]: f for f in response.json()["credentials"]["fields"]}
    assert fields["host"] == {"name": "host", "secret": False, "value": "db.example"}
    assert fields["password"] == {"name": "password", "secret": True, "value": ""}


def test_it_hides_secret_fields_of_the_shared_fixture(member_api, connection):
    response = member_api.get(f"/api/v1/connections/{connection.slug}")
    assert response.status_code == 200
    assert "tok-SECRET-4242" not in response.content.decode()
    assert response.json()["can_use"] is True


def test_it_shows_a_viewer_that_they_may_only_view(viewer_api, connection):
    response = viewer_api.get(f"/api/v1/connections/{connection.slug}")
    assert response.status_code == 200
    assert response.json()["can_use"] is False


def test_it_answers_404_to_a_stranger_and_for_a_missing_connection(stranger_api, connection):
    response = stranger_api.get(f"/api/v1/connections/{connection.slug}")
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"
    assert stranger_api.get("/api/v1/connections/nope").status_code == 404


def test_it_creates_a_connection_with_write_only_credentials(member_api, member):
    response = member_api.post(
        "/api/v1/connections",
        {
            "name": "Lake",
            "credential_fields": [
                {"name": "bucket", "value": "b1", "secret": False},
                {"name": "api_key", "value": "key-SECRET-1"},
            ],
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert "key-SECRET-1" not in response.content.decode()
    body = response.json()
    assert body["owner"] == "member" and body["slug"] == "lake"
    fields = {f["name"]: f["value"] for f in body["credentials"]["fields"]}
    assert fields == {"bucket": "b1", "api_key": ""}
    connection = Connection.objects.get(slug="lake")
    assert '"key-SECRET-1"' in connection.decrypted_credentials()


def test_the_owner_updates_credentials_and_settings(owner_api, connection):
    response = owner_api.patch(
        f"/api/v1/connections/{connection.slug}",
        {"description": "new", "credentials": '{"token": "tok-NEW-1"}'},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert "tok-NEW-1" not in response.content.decode()
    connection.refresh_from_db()
    assert connection.description == "new"
    assert "tok-NEW-1" in connection.decrypted_credentials()


def test_a_member_changes_settings_but_not_credentials(member_api, connection):
    url = f"/api/v1/connections/{connection.slug}"
    response = member_api.patch(url, {"packages": "six"}, content_type="application/json")
    assert response.status_code == 200, response.content
    response = member_api.patch(url, {"credentials": ""}, content_type="application/json")
    assert response.status_code == 403
    connection.refresh_from_db()
    assert connection.packages == "six" and connection.has_credentials


def test_a_viewer_and_a_stranger_may_not_change_a_connection(viewer_api, stranger_api, connection):
    url = f"/api/v1/connections/{connection.slug}"
    body = {"description": "mine"}
    assert viewer_api.patch(url, body, content_type="application/json").status_code == 403
    assert stranger_api.patch(url, body, content_type="application/json").status_code == 404
    connection.refresh_from_db()
    assert connection.description == ""


def test_it_explains_a_bad_credential_field_change(owner_api, connection):
    response = owner_api.patch(
        f"/api/v1/connections/{connection.slug}",
        {"credential_fields": [{"name": "missing", "secret": True}]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "missing" in response.json()["message"]
