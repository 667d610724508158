"""Running an ingest from the editor in a real browser, and looking at what it committed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, set_code
from tests.factories import make_connector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = """import pandas as pd


def list_objects(context, metadata):
    for month in ("2025-01", "2025-02"):
        yield {"name": month, "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"month": [metadata["name"]] * 4, "amount": [1, 2, 3, 4]})
"""


@pytest.fixture
def immediate_tasks(settings, tmp_path):
    # The task runs in the request that enqueues it (after commit), instead of a worker process.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.PARTITIONS_DIR = tmp_path / "partitions"


def test_it_plans_runs_and_shows_an_ingest(page, connection, immediate_tasks):
    connector = make_connector(connection=connection, name="Monthly", code=CODE)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    expect(page.locator("#partitions-panel")).to_contain_text("0 committed partitions")

    page.click("#plan-button")
    expect(page.locator(".ingest-plan .plan-read")).to_have_text("2")

    set_code(page, CODE + "\n# an unsaved edit\n")
    page.click("#ingest-button")
    expect(page.locator("#save-message")).to_contain_text("Save first")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-message")).to_have_text("Saved as version 2.")

    page.click("#ingest-button")
    progress = page.locator("#ingest-progress")
    expect(progress).to_have_attribute("data-status", "succeeded")
    expect(progress.locator(".progress-done")).to_have_text("2")
    expect(progress.locator(".partition-jobs tbody tr")).to_have_count(2)
    expect(progress.locator(".ingest-chart rect")).to_have_count(4)

    page.goto(f"/connectors/{connector.slug}/")
    partitions = page.locator("#partitions-panel")
    expect(partitions).to_contain_text("2 committed partitions · 8 rows")
    partitions.locator("a:has-text('2025-02')").click()
    expect(page.locator(".partition-rows tbody tr")).to_have_count(4)
    assert not page.errors


def test_it_scales_an_ingest_out_on_spark(page, connection, immediate_tasks, spark_server):
    connector = make_connector(connection=connection, name="Monthly", code=CODE)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.check("#ingest-engine-spark")
    page.click("#ingest-button")
    expect(page.locator("#ingest-engine")).to_have_text("one Spark job (scale out)")
    progress = page.locator("#ingest-progress")
    expect(progress).to_have_attribute("data-status", "succeeded", timeout=120_000)
    expect(progress.locator(".progress-done")).to_have_text("2")
    page.goto(f"/connectors/{connector.slug}/")
    expect(page.locator("#partitions-panel")).to_contain_text("2 committed partitions · 8 rows")
    assert not page.errors
