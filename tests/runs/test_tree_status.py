"""The object tree of "List objects": each leaf new, changed or unchanged against the committed
partitions, the committed ones no longer listed, and big levels shown a page at a time."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.urls import reverse

from runs.models import Partition, Run, RunKind, RunStatus
from runs.tree import MAX_VANISHED_SHOWN, TREE_PAGE_SIZE, tree_context
from tests.factories import TRIVIAL_CODE, make_connector
from tests.runs.ingest_helpers import ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


def preview_list(client, connector, **fields):
    data = {"code": connector.code, "interface": "pandas", "parser": "", "packages": ""}
    url = reverse("runs:preview", args=[connector.slug, "list"])
    return client.post(url, data | fields).content.decode()


def statuses(page: str) -> dict[str, str | None]:
    """{node name: its status badge (None for a prefix)} of a tree fragment."""
    found = {}
    for chunk in page.split('<li class="tree-node')[1:]:
        name = re.search(r'data-name="([^"]*)"', chunk).group(1)
        status = re.search(r'data-status="(\w+)"', chunk.split("</li>")[0])
        found[name] = status.group(1) if status else None
    return found


@pytest.fixture
def source_connector(connection, source):
    return make_connector(connection=connection, name="Source", code=source.code)


@pytest.fixture
def changed_source(source, source_connector):
    """An ingest of five partitions, then a source where b changed, c and 2025/y are new and
    gone is gone."""
    for name in ("a", "b", "gone", "2025/x"):
        source.set(name, "v1")
    assert ingest(source_connector).status == RunStatus.SUCCEEDED
    source.set("b", "v2")
    source.set("c", "v1")
    source.set("2025/y", "v1")
    source.remove("gone")
    return source


def test_it_marks_each_leaf_against_the_committed_partitions(
    client, owner, source_connector, changed_source
):
    client.force_login(owner)
    page = preview_list(client, source_connector)
    assert statuses(page) == {"2025": None, "a": "unchanged", "b": "changed", "c": "new"}
    # The whole listing is compared: the folder's leaves count too.
    assert re.search(r"2 new</span>\s*<span[^>]*>1 changed</span>\s*<span[^>]*>2 unchanged", page)
    assert "Against the 4 committed partitions" in page
    assert 'Committed, no longer listed (<span class="vanished-count">1</span>)' in page
    assert '<li class="vanished-name"><code>gone</code></li>' in page

    # The listing is complete, so a click on the folder pages its children from this run ...
    run = Run.objects.filter(kind=RunKind.LIST).latest("id")
    tree_url = reverse("runs:tree", args=[run.pk])
    assert f'data-children-url="{tree_url}?parent=2025"' in page
    stored = client.get(tree_url, {"parent": "2025"}).content.decode()
    assert statuses(stored) == {"2025/x": "unchanged", "2025/y": "new"}
    # ... and a listing of the folder alone (the lazy expansion) says the same.
    prefix = {"name": "2025", "is_prefix": True}
    children = preview_list(client, source_connector, object=json.dumps(prefix))
    assert statuses(children) == {"2025/x": "unchanged", "2025/y": "new"}
    assert "no longer listed" not in children


def test_a_changed_input_marks_every_leaf_changed_with_the_planners_reason(
    client, owner, source_connector, source
):
    source.set("a", "v1")
    ingest(source_connector)
    source_connector.code += "\n# a saved edit\n"
    source_connector.save()
    client.force_login(owner)
    page = preview_list(client, source_connector)
    assert statuses(page) == {"a": "changed"}
    assert 'tree-reason">connector code changed</span>' in page
    assert 'Committed, no longer listed (<span class="vanished-count">0</span>)' in page


def test_a_cut_listing_does_not_claim_what_is_no_longer_listed(
    client, owner, source_connector, changed_source, settings
):
    settings.PREVIEW_MAX_OBJECTS = 2
    client.force_login(owner)
    page = preview_list(client, source_connector)
    assert "limit reached" in page
    assert "Committed, no longer listed: cannot tell, the listing stopped at a limit." in page
    assert "vanished-name" not in page
    assert "data-children-url" not in page  # a cut listing lists a folder when it is clicked


def test_nothing_committed_marks_every_leaf_new(client, owner, source_connector, source):
    source.set("a", "v1")
    source.set("2025/x", "v1")
    client.force_login(owner)
    page = preview_list(client, source_connector)
    assert statuses(page) == {"2025": None, "a": "new"}
    assert "Nothing is committed yet" in page and "no longer listed" not in page


def test_an_empty_listing_names_the_first_committed_partitions_no_longer_listed(
    client, owner, connection
):
    code = TRIVIAL_CODE.replace(
        'yield {"name": "only", "fingerprint": "v1", "is_prefix": False}', "yield from ()"
    )
    connector = make_connector(connection=connection, name="Emptied", code=code)
    for i in range(MAX_VANISHED_SHOWN + 10):
        Partition.objects.create(
            connector=connector,
            name=f"p{i:03}",
            fingerprint="v1",
            code_fingerprint="c1",
            storage_path=f"x/p{i:03}.parquet",
        )
    client.force_login(owner)
    page = preview_list(client, connector)
    assert "Nothing here." in page
    count = MAX_VANISHED_SHOWN + 10
    assert f'Committed, no longer listed (<span class="vanished-count">{count}</span>)' in page
    assert page.count('class="vanished-name"') == MAX_VANISHED_SHOWN
    assert "<code>p000</code>" in page and f"<code>p{MAX_VANISHED_SHOWN:03}</code>" not in page
    assert "and 10 more" in page


# ---------------------------------------------------------------- big levels, a page at a time


def big_listing(connector, children: int, *, expansion: bool = False) -> Run:
    """A listing run as the sandbox stores it: one prefix "big/" with `children` leaves."""
    prefix = {"name": "big/", "is_prefix": True}
    objects = [
        {
            "name": f"big/{i:05}.csv",
            "fingerprint": f"f{i}",
            "is_prefix": False,
            "parent": "big/",
            "depth": 1,
            "metadata": {"name": f"big/{i:05}.csv", "fingerprint": f"f{i}"},
        }
        for i in range(children)
    ]
    if not expansion:
        root = {**prefix, "fingerprint": None, "parent": None, "depth": 0, "metadata": prefix}
        objects.insert(0, root)
    return Run.objects.create(
        connector=connector,
        kind=RunKind.LIST,
        status=RunStatus.SUCCEEDED,
        parameters={"object": prefix if expansion else None},
        result={"objects": objects, "leaf_count": children, "truncated": False, "problems": []},
    )


def test_tree_context_pages_a_level_of_twenty_thousand_children(connector):
    run = big_listing(connector, 20_000)
    started = time.perf_counter()
    root = tree_context(run, whole=True)
    first = tree_context(run, "big/")
    elapsed = time.perf_counter() - started
    print(f"tree_context over 20,000 children: root and first page in {elapsed * 1000:.0f} ms")
    assert [(node["name"], node["children"]) for node in root["nodes"]] == [("big/", 20_000)]
    assert root["tree"]["comparison"]["counts"] == {"new": 20_000, "changed": 0, "unchanged": 0}
    assert len(first["nodes"]) == TREE_PAGE_SIZE
    assert first["nodes"][0]["name"] == "big/00000.csv"
    assert {node["status"] for node in first["nodes"]} == {"new"}
    assert first["tree"]["more"] == 20_000 - TREE_PAGE_SIZE
    last = tree_context(run, "big/", offset=20_000 - 50)
    assert len(last["nodes"]) == 50 and last["tree"]["more"] == 0


def test_show_more_serves_the_next_page_from_the_stored_listing(client, owner, connector):
    run = big_listing(connector, 450, expansion=True)
    client.force_login(owner)
    runs_before = Run.objects.count()
    url = reverse("runs:tree", args=[run.pk])
    page = client.get(url, {"parent": "big/", "offset": TREE_PAGE_SIZE}).content.decode()
    assert page.count('<li class="tree-node') == TREE_PAGE_SIZE
    assert 'data-name="big/00200.csv"' in page and 'data-name="big/00199.csv"' not in page
    assert "show more (50 more)" in page
    assert "offset=400" in page and "parent=big%2F" in page
    last = client.get(url, {"parent": "big/", "offset": 400}).content.decode()
    assert last.count('<li class="tree-node') == 50 and "show more" not in last
    assert Run.objects.count() == runs_before  # no connector ran


def test_the_run_page_shows_the_first_page_with_show_more(client, owner, connector):
    run = big_listing(connector, 450, expansion=True)
    client.force_login(owner)
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert page.count('<li class="tree-node') == TREE_PAGE_SIZE
    assert "show more (250 more, 200 at a time)" in page


def test_show_more_is_for_who_may_see_the_run(client, stranger, connector):
    run = big_listing(connector, 10, expansion=True)
    client.force_login(stranger)
    assert client.get(reverse("runs:tree", args=[run.pk])).status_code == 403  # as the run page
    read = Run.objects.create(connector=connector, kind=RunKind.READ, status=RunStatus.SUCCEEDED)
    client.force_login(connector.connection.owner)
    assert client.get(reverse("runs:tree", args=[read.pk])).status_code == 404
    assert client.get(reverse("runs:tree", args=[run.pk]), {"offset": "x"}).status_code == 400
