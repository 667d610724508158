"""Run tests, Download and Upload in the editor, in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from connections import export_format
from tests.browser.conftest import log_in, set_code
from tests.factories import TRIVIAL_CODE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TESTS = (
    TRIVIAL_CODE
    + """

def test_listing(objects):
    assert [o["name"] for o in objects] == ["only"]


def test_rows(context, objects):
    rows = len(read_pandas_dataframe(context=context, metadata=objects[0]))
    print("rows:", rows)
    assert rows == 5
"""
)


def test_run_tests_shows_each_test_with_the_compared_values(page, connector):
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    set_code(page, TESTS)
    page.click("#test-button")
    result = page.locator("#result-panel .preview-result")
    expect(result).to_contain_text("2 tests: 1 passed, 1 failed, 0 errors")
    expect(result.locator('.test-result[data-outcome="passed"]')).to_contain_text("test_listing")
    failed = result.locator('.test-result[data-outcome="failed"]')
    expect(failed).to_contain_text("assert 3 == 5")
    expect(failed).to_contain_text("rows: 3")
    assert page.errors == []


def test_download_then_upload_a_changed_file(page, connector, tmp_path):
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    with page.expect_download() as info:
        page.click("#download-button")
    path = tmp_path / "downloaded.py"
    info.value.save_as(path)
    text = path.read_text()
    assert text.startswith(export_format.START_MARKER) and text.endswith(connector.code)

    path.write_text(text.replace("[1, 2, 3]", "[4]"))
    with page.expect_navigation():
        page.set_input_files("#upload-button input[type=file]", str(path))
    expect(page.locator("body")).to_contain_text("Uploaded as version 2.")
    expect(page.locator("#version-label")).to_have_text("v2")
    connector.refresh_from_db()
    assert "[4]" in connector.code
    assert page.errors == []
