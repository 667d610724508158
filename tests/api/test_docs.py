from __future__ import annotations

import re

from django.contrib.staticfiles import finders
from django.test import Client


def test_it_serves_the_openapi_schema(db):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/connections",
        "/api/v1/connectors/{slug}",
        "/api/v1/connectors/{slug}/previews/{action}",
        "/api/v1/connectors/{slug}/ingests",
        "/api/v1/ingests/{run_id}/cancel",
        "/api/v1/runs",
        "/api/v1/connectors/{slug}/partitions/{partition_id}/rows",
    ):
        assert path in paths


def test_it_serves_the_docs_with_local_assets_only(owner):
    client = Client()
    client.force_login(owner)
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui-bundle.js" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external assets"
    for asset in re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", html):
        assert finders.find(asset.split("?")[0]), asset


def test_the_docs_send_the_csrf_token_for_session_requests(owner):
    client = Client()
    client.force_login(owner)
    html = client.get("/api/v1/docs").content.decode()
    match = re.search(r'data-csrf-token="([^"]*)"', html)
    assert match and match.group(1)


def test_the_docs_page_needs_a_login(db):
    response = Client().get("/api/v1/docs")
    assert response.status_code == 302 and "/login/" in response.headers["Location"]


def test_every_api_operation_answers_401_in_json_without_a_login(db):
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    client = Client()
    for path, operations in paths.items():
        url = path.replace("{slug}", "x").replace("{action}", "read")
        url = url.replace("{run_id}", "1").replace("{number}", "1").replace("{partition_id}", "1")
        for method in operations:
            response = getattr(client, method)(url, content_type="application/json")
            assert response.status_code == 401, (method, url)
            assert response.json()["type"] == "unauthenticated"
