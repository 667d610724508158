"""The editor's details in a real browser: preview limits, recent runs, the plan button, re-lint
on an interface change, the versions diff."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runs.models import Run
from tests.browser.conftest import log_in, set_code
from tests.factories import make_connector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = """import pandas as pd


def list_objects(context, metadata):
    for number in range(5):
        yield {"name": f"part-{number}", "fingerprint": str(number)}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": range(50)})
"""


def test_it_shows_the_limits_beside_the_buttons_within_the_bounds(page, connection, settings):
    settings.PREVIEW_MAX_OBJECTS = 500
    settings.PREVIEW_TIMEOUT_S = 20.0
    connector = make_connector(connection=connection, name="Limits", code=CODE)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    limits = page.locator("#preview-limits")
    expect(limits.locator("#id_limit")).to_have_attribute("max", "10000")
    expect(limits.locator("#id_object_limit")).to_have_attribute("max", "500")
    expect(limits.locator("#id_object_limit")).to_have_value("500")
    expect(limits.locator("#id_timeout")).to_have_attribute("max", "20")

    page.fill("#id_object_limit", "2")
    page.click("text=List objects")
    tree = page.locator("#objects-panel")
    expect(tree.locator(".tree-leaf")).to_have_count(2)
    expect(tree).to_contain_text("limit reached")

    page.fill("#id_timeout", "25")
    page.click("text=Preview partition")
    expect(page.locator("#result-panel")).to_contain_text("At most 20 seconds")
    assert not page.errors


def test_it_refreshes_recent_runs_after_a_preview_and_names_the_saved_version(page, connection):
    connector = make_connector(connection=connection, name="History", code=CODE)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    runs = page.locator("#recent-runs")
    expect(runs).to_contain_text("No runs yet.")

    page.click("text=Preview context")
    expect(runs.locator("tbody tr")).to_have_count(1)
    expect(runs.locator("tbody tr").first).to_contain_text("v1")  # the saved code, unchanged

    set_code(page, CODE.replace("range(50)", "range(7)"))
    page.keyboard.press("Control+s")
    expect(page.locator("#save-message")).to_have_text("Saved as version 2.")
    page.click("text=Preview partition")
    expect(runs.locator("tbody tr")).to_have_count(2)
    expect(runs.locator("tbody tr").first).to_contain_text("v2")
    assert Run.objects.filter(code_version__number=2).count() == 1

    set_code(page, CODE.replace("range(50)", "range(8)"))
    page.click("text=Preview partition")
    expect(runs.locator("tbody tr")).to_have_count(3)
    expect(runs.locator("tbody tr").first).to_contain_text("unsaved")
    assert not page.errors


def test_the_plan_control_is_a_button(page, connection):
    connector = make_connector(connection=connection, name="Plan", code=CODE)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    button = page.get_by_role("button", name="Plan next ingest")
    expect(button).to_have_class("btn btn-sm btn-outline-primary")
    expect(button).to_have_attribute("title", re.compile(r"^What will the next ingest do\?"))


def test_changing_the_interface_lints_again_at_once(page, connection):
    connector = make_connector(connection=connection, name="Relint", code=CODE)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.wait_for_timeout(1000)  # the first lint
    expect(page.locator(".cm-lint-marker-error")).to_have_count(0)
    page.select_option("#id_interface", "spark")  # no read_spark_dataframe: a problem
    expect(page.locator(".cm-lint-marker")).not_to_have_count(0)
    page.select_option("#id_interface", "pandas")
    expect(page.locator(".cm-lint-marker")).to_have_count(0)
    assert not page.errors


def test_the_versions_diff_has_no_blank_lines(page, connection):
    connector = make_connector(connection=connection, name="Diff", code=CODE)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    set_code(page, CODE.replace("range(50)", "range(9)"))
    page.keyboard.press("Control+s")
    expect(page.locator("#save-message")).to_have_text("Saved as version 2.")
    page.goto(f"/connectors/{connector.slug}/versions/")
    text = page.locator("pre.diff").inner_text()
    lines = text.split("\n")
    assert "" not in [line for line in lines[:-1]], lines
    assert any(line.startswith("+") and "range(9)" in line for line in lines)
