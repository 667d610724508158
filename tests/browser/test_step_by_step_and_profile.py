"""Step by step (context, listing, then the reader) and the profile's histograms, in a browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, set_code
from tests.factories import make_connector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_READER = """import pandas as pd


def context(credentials):
    return {"region": "eu"}


def list_objects(context, metadata):
    yield {"name": "jan", "fingerprint": "1"}
"""

PROFILED = """import datetime as dt

import pandas as pd


def list_objects(context, metadata):
    yield {"name": "jan", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    n = 500
    return pd.DataFrame({
        "amount": [i % 10 for i in range(n)],
        "day": [dt.date(2025, 1, 1) + dt.timedelta(days=i % 40) for i in range(n)],
        "label": ["x"] * n,
    })
"""


def test_context_and_listing_run_before_the_reader_exists(page, connection):
    connector = make_connector(connection=connection, name="Stepwise", code=NO_READER)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    set_code(page, NO_READER)  # lint what is in the editor now
    expect(page.locator(".cm-lint-marker-warning")).to_have_count(1)
    expect(page.locator(".cm-lint-marker-error")).to_have_count(0)
    page.hover(".cm-lint-marker-warning")
    expect(page.locator(".cm-tooltip-lint")).to_contain_text("read_pandas_dataframe")

    result = page.locator("#result-panel .preview-result")
    page.click("text=Preview context")
    expect(result).to_contain_text("Succeeded")
    expect(result.locator(".result-context")).to_contain_text("region")

    page.click("text=List objects")
    expect(page.locator("#objects-panel .tree-leaf")).to_have_count(1)

    page.click(".tree-leaf:has-text('jan')")
    expect(result).to_contain_text(
        "The pandas interface needs read_pandas_dataframe(context, metadata) to read a "
        "partition; add it (see the template)."
    )
    assert not page.errors


def test_the_profile_draws_a_histogram_per_number_and_date_column(page, connection):
    connector = make_connector(connection=connection, name="Profiled", code=PROFILED)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.click("text=Preview partition")
    profile = page.locator("#result-panel .column-profile")
    expect(profile).to_contain_text("Column profile of all 500 rows of the partition")
    expect(profile.locator("svg.histogram")).to_have_count(2)  # amount and day, not label
    amount = profile.locator("svg.histogram").nth(0)
    expect(amount.locator(".histogram-bar")).to_have_count(10)
    expect(amount.locator(".histogram-bar title").nth(3)).to_have_text("3: 50 rows")
    day = profile.locator("svg.histogram").nth(1)
    expect(day.locator(".histogram-bar")).to_have_count(20)
    expect(day.locator(".histogram-bar title").nth(0)).to_contain_text("[2025-01-01, ")
    box = amount.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 10  # drawn, not collapsed
    assert not page.errors
