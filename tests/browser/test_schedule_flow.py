"""Setting a connector's schedule from the editor in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from runs.models import Schedule
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_sets_shows_and_turns_off_a_schedule(page, connector):
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    panel = page.locator("#schedule-panel")
    expect(panel).to_contain_text("Schedule: none")

    page.fill("#id_schedule", "0 25 * * *")
    page.click("#schedule-set")
    expect(page.locator("#schedule-panel [role=alert]")).to_contain_text("Bad cron expression")

    page.fill("#id_schedule", "0 9 * * *")
    page.fill("#id_schedule_timezone", "Europe/Paris")
    page.click("#schedule-set")
    expect(panel).to_contain_text("cron 0 9 * * * (Europe/Paris)")
    expect(panel).to_contain_text("last scheduled run: none yet")
    expect(panel.locator("time")).to_contain_text("09:00")
    assert Schedule.objects.get().timezone == "Europe/Paris"

    page.click("#schedule-off")
    expect(panel).to_contain_text("off")
    expect(page.locator("#schedule-off")).to_have_count(0)
    assert not Schedule.objects.get().enabled
    assert not page.errors
