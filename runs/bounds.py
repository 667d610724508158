"""Bounds on what a run stores and a page shows: cells cut with the one marker, results capped.

A preview's result (rows, profile, listed objects, context items) and a partition's rows page
come from user code and data: a 40 MiB cell must not grow the database by 120 MiB or render a
120 MiB page.
"""

from __future__ import annotations

import json
import re
from typing import Any

from connector_engine.output import cap_text, cut_marker

# Per key of a result, in order: the lists whose last items go first when a result is too
# large (read rows, listed objects and problems, context items, the profile).
_CUTTABLE = ("rows", "objects", "items", "problems", "profile")


def result_bounded(result: Any, *, cell_bytes: int, result_bytes: int) -> Any:
    """Return a result fit to store: every string over `cell_bytes` cut with the marker
    (connector_engine.output), and at most `result_bytes` of JSON in all.

    Too large, the last rows (objects, items, ...) are left out and counted in "<key>_cut",
    e.g. result["rows_cut"]; a result still too large without them is replaced by
    {"result_cut": marker}.
    """
    if result is None:
        return None
    try:
        stored = json.dumps(result)
        if _may_hold_long_strings(stored, cell_bytes):
            result = _cells_capped(result, cell_bytes)
            stored = json.dumps(result)
        size = len(stored)
    except RecursionError:
        return {"result_cut": "[output cut: nested too deeply to store]"}
    if size <= result_bytes:
        return result
    if isinstance(result, dict):
        result = dict(result)
        for key in _CUTTABLE:
            items = result.get(key)
            if isinstance(items, list) and items:
                result[key] = _first_that_fit(result, key, items, result_bytes)
                if _json_size(result) <= result_bytes:
                    return result
    return {"result_cut": cut_marker(size)}


def _first_that_fit(result: dict, key: str, items: list, limit: int) -> list:
    """Set result[key] to the first items that keep the result within `limit`; count the rest."""
    result[key] = []
    result[f"{key}_cut"] = len(items)  # as many digits as the final count, or more
    room = limit - _json_size(result)
    kept = 0
    for item in items:
        room -= _json_size(item) + 2  # and ", "
        if room < 0:
            break
        kept += 1
    result[f"{key}_cut"] = len(items) - kept
    if not result[f"{key}_cut"]:
        del result[f"{key}_cut"]
    return items[:kept]


def _may_hold_long_strings(stored: str, limit: int) -> bool:
    """Say whether a value's JSON may hold a string that `_cells_capped` would look at.

    A scan of the JSON text (C speed) instead of a walk of a large result in Python: a listing
    of 20,000 objects is 340,000 values. A string of n characters is at least n units (a
    character or an escape) between two quotes; a false alarm (a long run of numbers) only
    costs the walk.
    """
    return re.search(rf'"(?:[^"\\]|\\.){{{limit // 4 + 1}}}', stored) is not None


def _cells_capped(value: Any, limit: int) -> Any:
    """A copy of a JSON value with every string (dict keys too) cut at `limit` bytes."""
    if isinstance(value, str):
        # A character takes at most 4 bytes: shorter strings need no encoding to check.
        return cap_text(value, limit) if len(value) * 4 > limit else value
    if isinstance(value, list):
        return [_cells_capped(item, limit) for item in value]
    if isinstance(value, dict):
        return {
            _cells_capped(key, limit): _cells_capped(item, limit) for key, item in value.items()
        }
    return value


def _json_size(value: Any) -> int:
    """The size of a value as a JSONField stores it (ASCII JSON)."""
    return len(json.dumps(value))
