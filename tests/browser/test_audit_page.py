"""A change made in a real browser shows on the connection's audit log page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_a_schedule_set_in_the_editor_on_the_audit_page(page, connector):
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.fill("#id_schedule", "15m")
    page.click("#schedule-set")
    expect(page.locator("#schedule-panel")).to_contain_text("every 15m")

    page.goto(f"/connections/{connector.connection.slug}/")
    page.click("text=Audit log")
    newest = page.locator("#audit-log tbody tr").first
    expect(newest).to_contain_text("schedule set")
    expect(newest).to_contain_text(connector.slug)
    expect(newest).to_contain_text("every 15m (UTC)")
    expect(newest).to_contain_text("owner")
    expect(newest).to_contain_text("page")
    assert "tok-SECRET-4242" not in page.content()  # the fixture connection's secret
    assert not page.errors
