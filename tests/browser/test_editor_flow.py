"""A person's path through the app in a real browser: connection, connector, previews, versions."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, set_code
from tests.factories import UserFactory, make_connector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = "svc-PASSWORD-31337"

CONNECTOR = """import json

import pandas as pd


def context(credentials):
    fields = json.loads(credentials)
    return {"user": fields.get("user"), "password": fields.get("password"), "region": "eu"}


def list_objects(context, metadata):
    if not metadata:
        yield {"name": "2025", "fingerprint": "p", "is_prefix": True}
    else:
        yield {"name": "2025/jan", "fingerprint": "j1"}
        yield {"name": "2025/feb", "fingerprint": "f1"}


def read_pandas_dataframe(context, metadata):
    print("reading", metadata["name"])
    return pd.DataFrame({"month": [metadata["name"]] * 3, "amount": [1.5, None, 4.0]})


def infer_schema(context):
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    return StructType([StructField("month", StringType()), StructField("amount", DoubleType())])
"""


def test_it_takes_a_new_user_from_login_to_every_preview(page):
    UserFactory(username="newcomer")
    log_in(page, "newcomer")

    page.click("text=New connection")
    page.fill("#id_name", "Finance DB")
    page.fill("#id_credentials", json.dumps({"user": "svc", "password": SECRET}))
    page.click("button:has-text('Save')")
    expect(page.locator("h1")).to_have_text("Finance DB")
    assert SECRET not in page.content()

    page.click("text=New connector")
    page.fill("#id_name", "Monthly amounts")
    page.check("input[value=pandas]")
    page.click("text=Create and open the editor")
    expect(page.locator(".cm-content")).to_contain_text("def list_objects")

    set_code(page, CONNECTOR)
    expect(page.locator("#dirty-flag")).to_be_visible()

    page.click("text=Preview context")
    result = page.locator("#result-panel .preview-result")
    expect(result).to_contain_text("Succeeded")
    expect(result.locator(".result-context")).to_contain_text("region")
    # The context holds the credentials' password, a secret field: masked before it reaches the
    # page.
    expect(result.locator(".result-context")).to_contain_text("****")
    expect(result.locator(".isolation")).not_to_be_empty()

    page.click("text=List objects")
    tree = page.locator("#objects-panel")
    expect(tree).to_contain_text("2025")
    page.click(".tree-prefix:has-text('2025')")
    expect(tree.locator(".tree-leaf")).to_have_count(2)

    page.click(".tree-leaf:has-text('2025/feb')")
    expect(result.locator(".read-object")).to_have_text("2025/feb")
    expect(result.locator(".result-rows tbody tr")).to_have_count(3)
    expect(result.locator(".column-profile")).to_contain_text("33.3")  # amount: 1 null of 3
    expect(result.locator(".logs")).to_contain_text("reading 2025/feb")

    page.click("text=Infer schema")
    expect(result.locator(".schema-declared")).to_contain_text("amount")
    expect(result.locator(".schema-sampled")).to_contain_text("month")

    page.keyboard.press("Control+s")
    expect(page.locator("#save-message")).to_have_text("Saved as version 2.")
    expect(page.locator("#dirty-flag")).to_be_hidden()

    assert SECRET not in page.content()
    assert not page.errors


def test_it_links_an_error_to_the_line_that_raised(page, connection):
    broken = CONNECTOR.replace(
        'print("reading", metadata["name"])', 'raise RuntimeError("source is down")'
    )
    connector = make_connector(connection=connection, name="Broken", code=broken)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.click("text=Preview partition")
    error = page.locator("#result-panel .run-error")
    expect(error).to_contain_text("RuntimeError: source is down")
    expect(error).to_contain_text("read_pandas_dataframe")

    line = broken.splitlines().index('    raise RuntimeError("source is down")') + 1
    page.click(f".traceback .line-link[data-line='{line}']")
    cursor_line = page.evaluate(
        "() => { const v = window.connectorEditor.view;"
        " return v.state.doc.lineAt(v.state.selection.main.head).number; }"
    )
    assert cursor_line == line
    # The failing line is marked in the editor.
    marked = page.locator(".cm-line.cm-ce-errorLine")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text('raise RuntimeError("source is down")')


def test_it_diffs_versions_after_a_save(page, connection):
    connector = make_connector(connection=connection, name="Diffable", code=CONNECTOR)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    set_code(page, CONNECTOR.replace("[1.5, None, 4.0]", "[9.9, 9.9, 9.9]"))
    page.click("#save-button")
    expect(page.locator("#version-label")).to_have_text("v2")
    page.click("text=Versions")
    diff = page.locator("pre.diff")
    expect(diff.locator(".diff-removed")).to_contain_text("[1.5, None, 4.0]")
    expect(diff.locator(".diff-added")).to_contain_text("[9.9, 9.9, 9.9]")
    page.click("text=Revert to this")
    expect(page).to_have_url(re.compile(f"/connectors/{connector.slug}/$"))
    expect(page.locator("#version-label")).to_have_text("v3")
    expect(page.locator(".cm-content")).to_contain_text("[1.5, None, 4.0]")


def test_it_flags_contract_problems_as_you_type(page, connection):
    connector = make_connector(connection=connection, name="Linted", code=CONNECTOR)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    set_code(page, CONNECTOR.replace("def list_objects", "def list_objectz"))
    expect(page.locator(".cm-lint-marker-error")).not_to_have_count(0)
    page.hover(".cm-lint-marker-error >> nth=0")
    expect(page.locator(".cm-tooltip-lint")).to_contain_text("list_objects")


def test_it_repeats_the_last_preview_and_warns_before_losing_changes(page, connection):
    connector = make_connector(connection=connection, name="Keys", code=CONNECTOR)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.click("text=Preview partition")
    expect(page.locator("#result-panel .read-object")).to_have_text("2025/jan")

    set_code(page, CONNECTOR.replace('"amount": [1.5, None, 4.0]', '"amount": [7.0, 7.0, 7.0]'))
    page.keyboard.press("Control+Enter")  # in the editor: repeats "Preview partition"
    expect(page.locator("#result-panel .column-profile")).to_contain_text("7.0")

    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    page.close(run_before_unload=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
