"""The object tree of a listing run: one page of a level at a time, each leaf's status against
the committed partitions, and the committed partitions the listing no longer has.

A run stores its listing (bounded: PREVIEW_MAX_OBJECTS objects, PREVIEW_MAX_RESULT_BYTES of
JSON); a page shows at most TREE_PAGE_SIZE nodes of one level, and "show more" fetches the next
page from the stored result (runs.views.run_tree), never running the connector again.

A leaf is "new" (not committed), "changed" (the next ingest reads it again: its fingerprint
changed, an input of the code fingerprint changed, or its read failed last time) or
"unchanged" (the next ingest skips it). The comparison is the ingest planner's
(runs.ingest.planning.compare_with_committed) with the saved connector's inputs: what the next
ingest would do with these leaves. "No longer listed" is only claimed for a complete listing:
from the root, every object stored, no limit reached, no invalid item, no error.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from connector_engine.ingest.planner import NEW, leaves_from_listing
from runs.ingest.planning import compare_with_committed, ingest_inputs
from runs.models import Run, RunKind, RunStatus

TREE_PAGE_SIZE = 200  # nodes of one level rendered at once; "show more" fetches the next
MAX_VANISHED_SHOWN = 50  # committed partitions no longer listed, named on the page

NEW_LEAF, CHANGED_LEAF, UNCHANGED_LEAF = "new", "changed", "unchanged"


def listing_parent(run: Run) -> str | None:
    """The name of the prefix a listing run expanded, or None for a listing from the root."""
    prefix = (run.parameters or {}).get("object")
    name = prefix.get("name") if isinstance(prefix, dict) else None
    return name if isinstance(name, str) and name else None


def tree_context(
    run: Run, parent: str | None = None, *, offset: int = 0, whole: bool = False
) -> dict[str, Any]:
    """One page of the children of `parent` (None: the root) in a listing run, as template
    context: {"nodes", "run", "tree"}.

    With `whole`, also compare the whole listing with the committed partitions (counts by
    status, and the committed partitions no longer listed, when the listing can tell).
    """
    result = run.result if isinstance(run.result, dict) else {}
    if run.kind != RunKind.LIST or not isinstance(result.get("objects"), list):
        return {"nodes": [], "run": run, "tree": None}  # not a listing, or nothing listed
    # An empty listing is compared too: every committed partition is no longer listed.
    objects = [obj for obj in result["objects"] if isinstance(obj, dict)]
    level = [obj for obj in objects if obj.get("parent") == parent]
    offset = max(0, offset)
    shown = level[offset : offset + TREE_PAGE_SIZE]
    # A listing from the root knows how many children each prefix has; an expansion does not.
    counts = Counter(obj.get("parent") for obj in objects) if listing_parent(run) is None else None
    flagged = {
        problem["object"].get("name")
        for problem in result.get("problems") or ()
        if isinstance(problem, dict) and isinstance(problem.get("object"), dict)
    }
    summary = None
    if whole:
        summary = listing_comparison(run, objects, result)
        status = summary.pop("leaf_status")
    else:
        status = leaf_status(run.connector, shown)
    nodes = []
    for item in shown:
        leaf = status.get(item["name"]) if not item.get("is_prefix") else None
        nodes.append(
            {
                **item,
                "meta_json": json.dumps(item.get("metadata", item)),
                "problem": item["name"] in flagged,
                "children": counts.get(item["name"], 0) if counts is not None else None,
                "status": leaf[0] if leaf else None,
                "reason": leaf[1] if leaf else "",
            }
        )
    more = len(level) - offset - len(shown)
    tree = {
        "parent": parent,
        "offset": offset,
        "total": len(level),
        "more": more,
        "more_query": urlencode(
            {**({"parent": parent} if parent is not None else {}), "offset": offset + len(shown)}
        ),
        "next_page": min(more, TREE_PAGE_SIZE),
        "comparison": summary,
        # A complete listing from the root holds every prefix's children: expand from the run.
        "children_stored": counts is not None and not listing_cut(run, result),
    }
    return {"nodes": nodes, "run": run, "tree": tree}


def leaf_status(connector, objects: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """{leaf name: (status, reason)} of these listed objects against their committed
    partitions (only theirs are loaded)."""
    leaves = leaves_from_listing({"objects": objects})
    if not leaves:
        return {}
    plan, committed = compare_with_committed(
        connector, leaves, ingest_inputs(connector), names=[leaf.name for leaf in leaves]
    )
    return _statuses(plan, committed)


def listing_comparison(run: Run, objects: list[dict], result: dict[str, Any]) -> dict[str, Any]:
    """Compare a whole listing with the committed partitions: each leaf's status, counts by
    status and, when the listing is complete, the committed partitions it no longer has."""
    leaves = leaves_from_listing({"objects": objects})
    plan, committed = compare_with_committed(run.connector, leaves, ingest_inputs(run.connector))
    statuses = _statuses(plan, committed)
    counts = Counter(status for status, _ in statuses.values())
    incomplete = listing_incomplete(run, result)
    return {
        "leaf_status": statuses,
        "committed": plan.committed,
        "counts": {key: counts.get(key, 0) for key in (NEW_LEAF, CHANGED_LEAF, UNCHANGED_LEAF)},
        "incomplete": incomplete,
        "vanished": None if incomplete else plan.delete[:MAX_VANISHED_SHOWN],
        "vanished_total": None if incomplete else len(plan.delete),
        "vanished_more": 0 if incomplete else max(0, len(plan.delete) - MAX_VANISHED_SHOWN),
    }


def listing_incomplete(run: Run, result: dict[str, Any]) -> str:
    """Why a listing cannot tell which committed partitions are gone, or "" when it can."""
    if listing_parent(run) is not None:
        return "it lists one folder only"
    if result.get("problems") or result.get("problems_omitted"):
        return "some listed objects were invalid"
    return listing_cut(run, result)


def listing_cut(run: Run, result: dict[str, Any]) -> str:
    """Why a listing's stored objects are not all it would list, or "" when they are."""
    if run.status != RunStatus.SUCCEEDED or run.error_type:
        return "the listing did not finish"
    if result.get("truncated"):
        return "the listing stopped at a limit"
    if result.get("objects_cut") or result.get("result_cut"):
        return "not every listed object was stored"
    return ""


def _statuses(plan, committed: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Map the planner's decisions onto the tree's statuses, keeping the read reasons."""
    statuses = {name: (UNCHANGED_LEAF, "") for name in plan.skip}
    for read in plan.read:
        changed = read.name in committed and read.reason != NEW
        statuses[read.name] = (CHANGED_LEAF if changed else NEW_LEAF, read.reason)
    return statuses
