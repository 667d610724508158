"""The object tree in a real browser: each leaf new, changed or unchanged after an ingest and a
change of the source; a prefix with 20,000 children shown a page at a time."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from runs.models import RunStatus
from runs.tree import TREE_PAGE_SIZE
from tests.browser.conftest import log_in
from tests.factories import make_connector
from tests.runs.ingest_helpers import ingest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BIG = 20_000
BIG_PREFIX = f"""import pandas as pd


def list_objects(context, metadata):
    if not metadata:
        yield {{"name": "big/", "is_prefix": True}}
        yield {{"name": "small.csv", "fingerprint": "v1"}}
    else:
        for i in range({BIG}):
            yield {{"name": f"big/{{i:05}}.csv", "fingerprint": "v1"}}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({{"name": [metadata["name"]]}})
"""

# Click a prefix and resolve with the milliseconds until its first page is in the DOM and
# painted (the "show more" control is the page's last node).
CLICK_AND_TIME = """(selector) => new Promise((resolve) => {
  const link = document.querySelector(selector);
  const children = link.parentElement.querySelector(":scope > .tree-children");
  const start = performance.now();
  const observer = new MutationObserver(() => {
    if (!children.querySelector(".tree-more-button")) return;
    observer.disconnect();
    requestAnimationFrame(() => resolve(performance.now() - start));
  });
  observer.observe(children, {childList: true, subtree: true});
  link.click();
})"""


def test_it_marks_leaves_after_an_ingest_and_a_change_of_the_source(
    page, connection, source, settings, tmp_path
):
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    connector = make_connector(connection=connection, name="Source", code=source.code)
    for name in ("a", "b", "gone", "2025/x"):
        source.set(name, "v1")
    assert ingest(connector).status == RunStatus.SUCCEEDED
    source.set("b", "v2")
    source.set("c", "v1")
    source.set("2025/y", "v1")
    source.remove("gone")

    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.click("text=List objects")
    tree = page.locator("#objects-panel")
    for name, status in (("a", "unchanged"), ("b", "changed"), ("c", "new")):
        expect(tree.locator(f".tree-node[data-name='{name}'] .tree-status")).to_have_text(status)
    expect(tree.locator(".tree-comparison")).to_contain_text("Against the 4 committed partitions")
    vanished = tree.locator(".tree-vanished")
    expect(vanished).to_contain_text("Committed, no longer listed (1)")
    expect(vanished.locator(".vanished-name")).to_have_text(["gone"])

    page.click(".tree-prefix:has-text('2025')")
    expect(tree.locator(".tree-node[data-name='2025/x'] .tree-status")).to_have_text("unchanged")
    expect(tree.locator(".tree-node[data-name='2025/y'] .tree-status")).to_have_text("new")
    assert not page.errors


@pytest.mark.parametrize("expansion", ["stored", "listed"])
def test_a_prefix_with_20000_children_shows_a_page_and_more_on_demand(
    page, connection, settings, expansion
):
    # "stored": the default PREVIEW_MAX_OBJECTS holds the whole listing, so the prefix's children
    # come from the listing's run. "listed": the listing from the root stops at its limit, so the
    # click lists the prefix (20,000 children fit the limit).
    if expansion == "listed":
        settings.PREVIEW_MAX_OBJECTS = BIG + 1
    connector = make_connector(connection=connection, name="Big", code=BIG_PREFIX)
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    page.click("text=List objects")
    tree = page.locator("#objects-panel")
    expect(tree.locator(".tree-node[data-name='big/']")).to_be_visible()
    if expansion == "stored":
        expect(tree.locator(".tree-node[data-name='big/']")).to_contain_text(f"({BIG})")
        expect(tree.locator(".result-list-summary")).to_contain_text(f"{BIG + 1} partitions")
    else:
        expect(tree.locator(".result-list-summary")).to_contain_text("limit reached")
    runs = connector.runs.count()

    elapsed_ms = page.evaluate(CLICK_AND_TIME, "#objects-panel .tree-prefix")
    children = tree.locator(".tree-node[data-name='big/'] > .tree-children")
    expect(children.locator(".tree-node")).to_have_count(TREE_PAGE_SIZE)
    more = children.locator(".tree-more-button")
    expect(more).to_contain_text(f"show more ({BIG - TREE_PAGE_SIZE} more")
    expect(children).not_to_contain_text("limit reached")
    print(
        f"\n{expansion}: click on a prefix of {BIG} children to its first page: {elapsed_ms:.0f} ms"
    )
    assert connector.runs.count() == runs + (expansion == "listed")
    runs = connector.runs.count()

    more.click()
    expect(children.locator(".tree-node")).to_have_count(2 * TREE_PAGE_SIZE)
    expect(children.locator(".tree-node").nth(TREE_PAGE_SIZE)).to_have_attribute(
        "data-name", f"big/{TREE_PAGE_SIZE:05}.csv"
    )
    expect(children.locator(".tree-more-button")).to_contain_text(
        f"show more ({BIG - 2 * TREE_PAGE_SIZE} more"
    )
    assert connector.runs.count() == runs  # paged from the stored listing: nothing ran again
    # A page's leaf is one click from its preview, as on the first page.
    children.locator(".tree-leaf:has-text('big/00201.csv')").click()
    expect(page.locator("#result-panel .read-object")).to_have_text("big/00201.csv")
    assert not page.errors
