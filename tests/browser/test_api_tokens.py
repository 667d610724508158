"""The API tokens page and the API docs in a real browser."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.factories import UserFactory, make_connection

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def api_get(base_url: str, path: str, token: str) -> tuple[int, object]:
    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_it_creates_a_token_shown_once_and_revokes_it(page, live_server):
    owner = UserFactory(username="owner")
    make_connection(owner=owner, name="Warehouse")
    log_in(page, "owner")

    page.click("a:has-text('API tokens')")
    page.fill("#token-name", "laptop")
    page.click("button:has-text('Create token')")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("cs_")
    status, body = api_get(live_server.url, "/api/v1/connections", token)
    assert status == 200 and [c["slug"] for c in body] == ["warehouse"]

    page.goto("/account/api-tokens/")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    expect(page.locator("tbody")).to_contain_text("laptop")
    page.click("button:has-text('Revoke')")
    expect(page.locator("tbody")).to_contain_text("revoked")
    status, body = api_get(live_server.url, "/api/v1/connections", token)
    assert status == 401 and body["type"] == "unauthenticated"
    assert page.errors == []


def test_the_docs_render_from_local_assets_and_call_the_api_with_the_session(page, live_server):
    owner = UserFactory(username="owner")
    make_connection(owner=owner, name="Warehouse")
    hosts = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    log_in(page, "owner")

    page.goto("/api/v1/docs")
    operation = page.locator("#operations-connections-api_views_connections_connection_list")
    operation.locator("button.opblock-summary-control").click()
    page.click("button:has-text('Try it out')")
    page.click("button:has-text('Execute')")
    expect(page.locator(".live-responses-table")).to_contain_text("warehouse")
    assert hosts == {live_server.url.split("/")[2]}, hosts
    assert page.errors == []
