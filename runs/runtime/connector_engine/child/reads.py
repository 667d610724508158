"""The `read` action: one leaf (or a batch of leaves) through the interface's reader, as Arrow.

- request.object must be a leaf; None reads the first valid leaf, found lazily.
- A preview keeps limits.row_limit rows and says whether there were more; `full_table` keeps
  every row (ingest). A preview's column profile (connector_engine.profile) covers the first
  limits.profile_row_budget rows the reader gives (all of them when the partition fits), read
  before the rows shown are cut; `profile_scope` says which.
- pandas: the returned DataFrame is converted (see connector_engine.tabular). bytes: the chunks
  are parsed with the connector's parser (see connector_engine.parsers); a preview stops pulling
  chunks once it has enough rows for the profile and closes the generator. spark: the first N
  rows (N: the profile's budget) are taken with `df.limit(N).toArrow()` in one fetch and counted
  with `df.count()` (full_table: `df.toArrow()`); the profile is computed on them in the child,
  as for pandas, not with Spark aggregations.
- A batch read (request.objects, full_table only) reads each leaf exactly as a single read would
  after one contract check, one module load and one context() call; whatever one reader raises
  fails only that item: {"batch": [{ok, result, error}, ...]} and one table per item in
  ActionOutcome.tables (None for a failed item). Leaves share the process, so module state a
  reader changes is seen by the next leaf of the batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa

from connector_engine import parsers, profile, tabular
from connector_engine.child import listing
from connector_engine.child.errors import memory_limit_mb, user_error
from connector_engine.child.loader import LoadedConnector
from connector_engine.child.results import ActionFailed, ActionOutcome
from connector_engine.child.spark_client import spark_error
from connector_engine.contract import missing_reader_message
from connector_engine.protocol import READERS, ErrorType, Interface
from connector_engine.user_code import ConnectorError
from connector_engine.values import describe, json_safe, safe_repr


def run_read(connector: LoadedConnector) -> ActionOutcome:
    """Read one leaf (or each leaf of a batch) with the interface's reader."""
    if connector.request.objects is not None:
        return run_read_batch(connector)
    return read_object(connector, leaf_to_read(connector))


def run_read_batch(connector: LoadedConnector) -> ActionOutcome:
    """Read each leaf of request.objects in turn; a failure fails only its own item."""
    items: list[dict[str, Any]] = []
    tables: list[pa.Table | None] = []
    for leaf in connector.request.objects or []:
        try:
            outcome = read_object(connector, checked_leaf(leaf))
        except BaseException as exc:  # as in execute: user code may raise anything
            error = user_error(exc, memory_limit_mb(connector.request))
            outcome = ActionOutcome(False, None, error)
        items.append({"ok": outcome.ok, "result": outcome.result, "error": outcome.error})
        tables.append(outcome.table)
    return ActionOutcome(True, {"batch": items}, tables=tables)


def read_object(connector: LoadedConnector, leaf: dict[str, Any]) -> ActionOutcome:
    """Read one leaf with the interface's reader; a preview keeps row_limit rows and profiles
    up to profile_row_budget (at least the rows shown)."""
    request = connector.request
    if request.full_table:
        table, row_count, exact = read_leaf(connector, leaf, None)
        return ActionOutcome(True, _read_result(table, row_count, exact, leaf, False), table=table)
    row_limit = request.limits.row_limit
    budget = max(row_limit, request.limits.profile_row_budget)
    read, row_count, exact = read_leaf(connector, leaf, budget)
    table = read.slice(0, row_limit)
    truncated = row_count > row_limit or not exact
    result = _read_result(table, row_count, exact, leaf, truncated)
    profiled = read.slice(0, budget)  # the first rows, in the reader's order: not a sample
    result["profile"] = profile.column_profile(profiled)
    result["profile_scope"] = profile.profile_scope(profiled.num_rows, row_count, exact)
    return ActionOutcome(True, result, table=table)


def _read_result(
    table: pa.Table, row_count: int, exact: bool, leaf: dict[str, Any], truncated: bool
) -> dict[str, Any]:
    """What a read says besides its rows."""
    return {
        "columns": tabular.table_columns(table),
        "row_count": row_count,
        "row_count_exact": exact,
        "truncated": truncated,
        "object": _object_summary(leaf),
    }


def _object_summary(leaf: dict[str, Any]) -> dict[str, Any]:
    """Say which object was read, for the UI."""
    name = leaf.get("name")
    return {
        "name": name if isinstance(name, str) else safe_repr(name),
        "metadata": json_safe(leaf),
    }


def leaf_to_read(connector: LoadedConnector) -> dict[str, Any]:
    """Return request.object, or the first valid leaf of a lazy listing."""
    requested = connector.request.object
    if requested is not None:
        return checked_leaf(requested)
    list_objects = connector.required("list_objects")
    leaf, partial = listing.first_leaf(list_objects, connector.context, connector.request.limits)
    if partial.error is not None:
        raise ActionFailed(listing.listing_error(partial, memory_limit_mb(connector.request)))
    if leaf is None:
        raise ConnectorError.about(ErrorType.NO_OBJECTS, _no_leaf_message(partial), list_objects)
    return leaf.item


def checked_leaf(requested: Any) -> dict[str, Any]:
    """Return a requested object when it is a leaf's dict; raise InvalidRequest otherwise."""
    if not isinstance(requested, dict):
        raise ConnectorError(
            ErrorType.INVALID_REQUEST,
            f"The object to read must be a dict, not {describe(requested)}",
        )
    if requested.get("is_prefix") is True:
        raise ConnectorError(
            ErrorType.INVALID_REQUEST,
            f"{safe_repr(requested.get('name'))} is a prefix: pick a leaf to read",
        )
    return requested


def _no_leaf_message(partial: listing.Listing) -> str:
    """Explain why no leaf was found to read."""
    message = "list_objects yielded no valid leaf (is_prefix False) to read"
    if partial.problems:
        first = partial.problems[0]
        message += f"; {partial.problem_count} item(s) had problems, e.g. {first.message}"
    if partial.truncated:
        message += "; the listing stopped at a limit before finding one"
    return message


def read_leaf(
    connector: LoadedConnector, leaf: dict[str, Any], row_limit: int | None
) -> tuple[pa.Table, int, bool]:
    """Call the reader on one leaf; return (table, row count, whether the count is exact)."""
    interface = connector.request.interface
    reader = connector.function(READERS[interface])
    if reader is None:  # e.g. a star import that did not provide it
        raise ConnectorError(ErrorType.CONTRACT_ERROR, missing_reader_message(interface))
    try:
        if interface == Interface.PANDAS:
            return _read_pandas(reader, connector.context, leaf, row_limit)
        if interface == Interface.SPARK:
            return _read_spark(reader, connector, leaf, row_limit)
        return _read_bytes(reader, connector, leaf, row_limit)
    except ConnectorError as exc:
        raise exc.located_at(reader) from None


def _read_pandas(
    reader: Callable[..., Any], context: Any, leaf: dict[str, Any], row_limit: int | None
) -> tuple[pa.Table, int, bool]:
    """Call read_pandas_dataframe and convert what it returned."""
    frame = reader(context=context, metadata=leaf)
    if not isinstance(frame, pd.DataFrame):
        hint = " (use series.to_frame())" if isinstance(frame, pd.Series) else ""
        raise ConnectorError.about(
            ErrorType.CONTRACT_ERROR,
            f"read_pandas_dataframe returned {describe(frame)}; it must return a pandas "
            f"DataFrame{hint}",
            reader,
        )
    row_count = len(frame)
    if row_limit is not None:
        frame = frame.head(row_limit)
    return tabular.dataframe_to_table(frame), row_count, True


def _read_bytes(
    reader: Callable[..., Any],
    connector: LoadedConnector,
    leaf: dict[str, Any],
    row_limit: int | None,
) -> tuple[pa.Table, int, bool]:
    """Call read_bytes and parse its chunks with the connector's parser."""
    chunks = reader(context=connector.context, metadata=leaf)
    try:
        parser = connector.request.parser or ""
        table, stopped = parsers.read_chunks_table(
            parsers.iter_chunks(chunks), parser, row_limit, connector.request.parser_options
        )
    finally:
        listing.close_quietly(chunks)  # a preview may stop before the generator ends
    return table, table.num_rows, not stopped


def _read_spark(
    reader: Callable[..., Any],
    connector: LoadedConnector,
    leaf: dict[str, Any],
    row_limit: int | None,
) -> tuple[pa.Table, int, bool]:
    """Call read_spark_dataframe, then fetch its first rows (or all) as Arrow and count it."""
    try:
        frame = reader(spark=connector.spark(), context=connector.context, metadata=leaf)
    except BaseException as exc:
        raise spark_error(exc, reader) from None
    if not _is_spark_dataframe(frame):
        raise ConnectorError.about(
            ErrorType.CONTRACT_ERROR,
            f"read_spark_dataframe returned {describe(frame)}; it must return a pyspark DataFrame",
            reader,
        )
    try:
        if row_limit is None:
            table = frame.toArrow()
            return table, table.num_rows, True
        # A preview shows Spark's own types (bigint, not int64), as `frame.dtypes` names them.
        spark_types = json.dumps(dict(frame.dtypes))
        table = frame.limit(row_limit).toArrow()
        table = table.replace_schema_metadata({tabular.SPARK_TYPES: spark_types})
        return table, int(frame.count()), True
    except BaseException as exc:  # the plan runs here, outside the user's code
        raise spark_error(exc, reader) from None


def _is_spark_dataframe(value: Any) -> bool:
    """Recognise a pyspark DataFrame (Connect or classic)."""
    from pyspark.sql import DataFrame

    return isinstance(value, DataFrame)
