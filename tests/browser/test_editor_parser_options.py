"""The csv parser's options in a real browser: shown for csv, previewed unsaved, then saved."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.factories import make_connector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV_CODE = """\
def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield "a;b\\n1;x\\n2;\\n"
"""


def test_a_delimiter_set_in_the_editor_is_previewed_without_saving(page, connection):
    connector = make_connector(
        connection=connection, name="Semicolons", code=CSV_CODE, interface="bytes", parser="csv"
    )
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    options = page.locator("#csv-options")
    expect(options).to_be_visible()
    expect(page.locator("#id_csv_delimiter")).to_have_value(",")

    page.fill("#id_csv_delimiter", ";")
    expect(page.locator("#dirty-flag")).to_be_visible()
    page.click("text=Preview partition")
    result = page.locator("#result-panel .preview-result")
    expect(result).to_contain_text("Succeeded")
    headers = result.locator(".result-rows thead th")
    expect(headers).to_have_count(2)
    expect(headers.nth(0)).to_contain_text("a")
    expect(headers.nth(1)).to_contain_text("b")
    connector.refresh_from_db()
    assert connector.parser_options == {}  # previewed, not saved

    # Another parser has no options: they hide; back to csv, they are as they were.
    page.select_option("#id_parser", "jsonl")
    expect(options).to_be_hidden()
    page.select_option("#id_parser", "csv")
    expect(options).to_be_visible()
    expect(page.locator("#id_csv_delimiter")).to_have_value(";")

    page.click("#save-button")
    expect(page.locator("#save-message")).to_have_text("Saved as version 2.")
    expect(page.locator("#dirty-flag")).to_be_hidden()
    connector.refresh_from_db()
    assert connector.parser_options == {"delimiter": ";"}
    assert not page.errors
