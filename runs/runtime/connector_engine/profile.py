"""Profile the columns of a read preview: over the partition, up to a row budget.

A preview shows `row_limit` rows, but the profile covers what the reader returned up to
`Limits.profile_row_budget` rows: all of a partition that fits, otherwise its first N rows (the
reader's order; not a random sample, so two previews agree). `profile_scope` says which.

Per column: type, null count and percentage, distinct count (exact over the rows profiled, which
the budget bounds), min and max (orderable types), and for numeric, date and timestamp columns a
histogram of at most MAX_BINS equal-width bins: {"kind", "edges", "counts", "per_value"}, edges as
numbers or ISO strings, each bin [edge_i, edge_i+1) and the last one closed (per_value: one bin
per whole value, edges[i] itself). Bin counts sum to the column's
non-null count (NaN and infinities are counted apart as "not_finite"). Masking is the sandbox's:
the profile is part of the result, masked like the rest of it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connector_engine.tabular import table_columns
from connector_engine.values import json_safe

MAX_BINS = 20


def profile_scope(profiled: int, row_count: int, exact: bool) -> dict[str, Any]:
    """Say which rows a profile covers: all of the partition, or its first `profiled` rows."""
    whole = exact and profiled >= row_count
    if whole:
        rows = f"{row_count:,} row{'' if row_count == 1 else 's'}"
        note = f"Column profile of all {rows} of the partition"
    elif exact:
        note = f"Column profile of the first {profiled:,} of {row_count:,} rows (the row budget)"
    else:
        note = f"Column profile of the first {profiled:,} rows (the partition has more)"
    return {"rows": profiled, "of_rows": row_count if exact else None, "whole": whole, "note": note}


def column_profile(table: pa.Table) -> list[dict[str, Any]]:
    """Profile each column of `table`: type, nulls, distinct, min, max and a histogram."""
    types = {column["name"]: column["type"] for column in table_columns(table)}
    return [
        _profile_column(name, types.get(name, ""), column)
        for name, column in zip(table.column_names, table.columns, strict=True)
    ]


def _profile_column(name: str, type_name: str, column: pa.ChunkedArray) -> dict[str, Any]:
    """Profile one column."""
    rows = len(column)
    entry: dict[str, Any] = {
        "name": name,
        "type": type_name,
        "nulls": column.null_count,
        "null_pct": round(100.0 * column.null_count / rows, 1) if rows else 0.0,
        "min": None,
        "max": None,
        "histogram": None,
    }
    try:
        entry["distinct"] = pc.count_distinct(column, mode="only_valid").as_py()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        entry["distinct"] = None  # nested types have no distinct count
    if _orderable(column.type) and column.null_count < rows:
        extremes = pc.min_max(column)
        entry["min"] = json_safe(extremes["min"].as_py())
        entry["max"] = json_safe(extremes["max"].as_py())
    try:
        entry["histogram"] = histogram(column, entry["distinct"])
    except (pa.ArrowException, ValueError, OverflowError):
        entry["histogram"] = None  # a profile never fails a read
    return entry


def histogram(column: pa.ChunkedArray, distinct: int | None = None) -> dict[str, Any] | None:
    """Equal-width bins of a numeric, date or timestamp column; None for other types or no data."""
    kind = _histogram_kind(column.type)
    if kind is None:
        return None
    values = _as_numbers(column.drop_null(), kind)
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if len(finite) == 0:
        return None
    low, high = finite.min(), finite.max()
    edges = _edges(low, high, kind, distinct)
    counts, _ = np.histogram(finite, bins=edges)
    result: dict[str, Any] = {
        "kind": kind,
        "edges": [_edge_value(edge, kind, column.type) for edge in edges],
        "counts": [int(count) for count in counts],
        # One bin per whole value (integers, days, timestamp ticks): bin i holds edges[i] only.
        "per_value": kind != "number" and int(high) - int(low) < MAX_BINS,
    }
    if len(finite) < len(values):
        result["not_finite"] = int(len(values) - len(finite))
    return result


def _histogram_kind(dtype: pa.DataType) -> str | None:
    """Say how a type is binned: "integer", "number", "date", "datetime" or not at all."""
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "datetime"
    return None


def _as_numbers(column: pa.ChunkedArray, kind: str) -> np.ndarray:
    """The column's values as a numpy array: days for dates, the unit's ticks for timestamps."""
    if kind == "date":
        column = column.cast(pa.date32()).cast(pa.int32())
    elif kind == "datetime":
        column = column.cast(pa.int64())
    elif pa.types.is_decimal(column.type):
        column = column.cast(pa.float64())
    if kind in ("integer", "date", "datetime"):
        return column.to_numpy().astype(np.int64, copy=False)
    return column.to_numpy().astype(np.float64, copy=False)


def _edges(low: Any, high: Any, kind: str, distinct: int | None) -> np.ndarray:
    """At most MAX_BINS equal-width bin edges from low to high; one bin per value when whole
    values span fewer than MAX_BINS."""
    if kind != "number":
        span = int(high) - int(low)
        if span < MAX_BINS:  # one bin per whole value (day, or timestamp tick)
            return np.arange(int(low), int(high) + 2, dtype=np.int64)
        return np.linspace(int(low), int(high), MAX_BINS + 1)
    if low == high:
        return np.array([low, high + (abs(low) or 1.0) * 1e-9 + 1e-12])
    bins = min(MAX_BINS, max(distinct or MAX_BINS, 1))
    return np.linspace(low, high, bins + 1)


def _edge_value(edge: Any, kind: str, dtype: pa.DataType) -> Any:
    """An edge for the result: a number, or an ISO date / timestamp."""
    if kind == "date":
        return (dt.date(1970, 1, 1) + dt.timedelta(days=round(float(edge)))).isoformat()
    if kind == "datetime":
        ticks = round(float(edge))
        return json_safe(pa.scalar(ticks, type=pa.int64()).cast(dtype).as_py())
    if kind == "integer" and float(edge).is_integer():
        return int(edge)
    return json_safe(float(edge))


def _orderable(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_temporal(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
    )
