"""Run one action (context, list, read, schema) on a connector, inside the sandbox child.

`execute` never raises: every failure becomes ActionOutcome(ok=False, error={...}). It does not
fork, limit, capture output or mask secrets; the sandbox around it does.

Decisions:
- Static contract errors stop everything with type "ContractError" and all problems attached
  under error["problems"]; runtime contract violations (a reader returning None, list_objects
  returning a non-iterable) are "ContractError" too, located at the function's def line.
- `list`: ok is True when the listing ran, even with validation problems (they are data about
  the connector); ok is False when list_objects raised, and the objects listed before the
  exception are still in the result. request.object None or {} lists from the root.
- `read`: request.object must be a leaf; None reads the first valid leaf, found lazily.
- A batch `read` (request.objects, full_table only) checks the contract, loads the module and
  calls context() once, then reads each leaf exactly as a single read would; whatever one
  reader raises fails only that item: {"batch": [{ok, result, error}, ...]} and one table per
  item in ActionOutcome.tables (None for a failed item). Leaves share the process, so module
  state a reader changes is seen by the next leaf of the batch.
- `schema`: the sample is read with at least SCHEMA_SAMPLE_ROWS rows.
- Spark: `spark` is a Spark Connect session to request.spark_remote, created on first use (so
  pyspark is imported only by requests that need it). A spark read takes the first N rows with
  `df.limit(N).toArrow()` and counts with `df.count()` (full_table: `df.toArrow()`). Spark's own
  errors keep their class name as the type, lose the JVM stack trace, and point at the user's
  line (or at the reader's def when Spark failed while executing the plan). Without
  spark_remote, spark gives "NotAvailable". A killed child does not stop a query the server
  already runs (the caller interrupts a pooled session after a kill).
- Pooled Spark sessions (a spark_remote with `session_id=`, see connector_engine.spark.sessions) are
  shared with earlier runs: before user code gets one, `reset_pooled_session` drops temporary
  views (local and global) and temporary functions, clears the cache and resets the runtime
  configuration (SQL `RESET`). Not reset: the current catalog and database, session variables,
  added artifacts and persistent tables (the warehouse is shared by design). A pooled session is
  never released at the end (that would close its id); a session the server says is closed or
  expired fails with "SparkSessionClosed", which the caller answers by rotating the slot's id and
  retrying once.
"""

from __future__ import annotations

import builtins
import inspect
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from connector_engine import contract, tabular
from connector_engine.child import listing
from connector_engine.child.errors import (
    CONNECTOR_FILENAME,
    LIBRARY_FILENAME,
    ConnectorError,
    compile_user_code,
    error_message,
    function_location,
    user_error,
    user_frames,
    user_traceback,
)
from connector_engine.protocol import (
    ACTIONS,
    INTERFACES,
    LIBRARY_MODULE,
    PARSERS,
    READERS,
    SandboxRequest,
)
from connector_engine.spark.connect import spark_session_class, without_jvm_trace
from connector_engine.spark.sessions import session_id_of
from connector_engine.values import describe, json_safe, safe_repr, type_name

CONNECTOR_MODULE = "connector"
SCHEMA_SAMPLE_ROWS = 1000
SPARK_NOT_AVAILABLE = (
    "Spark is not available to this request: no Spark Connect server was given "
    "(spark_remote is empty)"
)
SPARK_SESSION_GONE = "INVALID_HANDLE.SESSION_"  # SESSION_CLOSED, SESSION_NOT_FOUND, ...
SPARK_SESSION_CLOSED = (
    "The Spark session this request leased was closed or expired on the server; "
    "a retry gets a new one"
)
ROOT_METADATA_HINT = (
    " (hint: list_objects is called with metadata=None at the root; start with "
    "`metadata = metadata or {}` or test `if not metadata:`)"
)


@dataclass
class ActionOutcome:
    """What an action produced: a JSON-safe result and/or error, and the rows read as Arrow.

    A batch read leaves `table` None and puts one table per leaf (None when it failed) in
    `tables`, in the order of result["batch"].
    """

    ok: bool
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    table: pa.Table | None = None
    tables: list[pa.Table | None] | None = None


class ActionFailed(Exception):
    """Stop an action with an error while keeping a partial result."""

    def __init__(self, error: dict[str, Any], result: dict[str, Any] | None = None) -> None:
        super().__init__(error.get("message"))
        self.error = error
        self.result = result


@dataclass
class Connector:
    """A loaded connector module and the context its functions receive."""

    request: SandboxRequest
    namespace: dict[str, Any]
    context: Any = None
    spark_session: Any = None

    def spark(self) -> Any:
        """Return the Spark Connect session, connecting on first use."""
        if self.spark_session is None:
            self.spark_session = connect_spark(self.request.spark_remote)
        return self.spark_session

    def function(self, name: str) -> Callable[..., Any] | None:
        """Return a module-level callable, None when absent; a non-callable is an error."""
        value = self.namespace.get(name)
        if value is None:
            return None
        if not callable(value):
            raise ConnectorError(
                "ContractError", f"{name} must be a function, but it is {describe(value)}"
            )
        return value

    def required(self, name: str) -> Callable[..., Any]:
        """Return a contract function that must exist."""
        func = self.function(name)
        if func is None:
            raise ConnectorError("ContractError", f"The connector does not define {name}")
        return func


def execute(request: SandboxRequest) -> ActionOutcome:
    """Run the request's action on its connector; never raise."""
    memory_mb = _memory_mb(request)
    try:
        with _user_modules():
            return _execute(request)
    except ActionFailed as failed:
        return ActionOutcome(False, failed.result, failed.error)
    except BaseException as exc:  # user code may raise anything, SystemExit included
        return ActionOutcome(False, None, user_error(exc, memory_mb))


def _memory_mb(request: Any) -> int | None:
    """Return the memory limit without trusting the request's shape."""
    try:
        return int(request.limits.memory_mb)
    except Exception:
        return None


def _execute(request: SandboxRequest) -> ActionOutcome:
    """Validate, load the connector, build its context and run the action."""
    _check_request(request)
    _check_contract(request)
    connector = load_connector(request)
    connector.context = call_context(connector)
    try:
        return ACTION_HANDLERS[request.action](connector)
    finally:
        release_spark(connector)


def _check_request(request: SandboxRequest) -> None:
    """Reject actions, interfaces and parsers the engine does not know."""
    if request.action not in ACTIONS:
        raise ConnectorError("InvalidRequest", f"Unknown action {request.action!r}")
    if request.interface not in INTERFACES:
        raise ConnectorError(
            "InvalidRequest",
            f"Unknown interface {request.interface!r}: use one of {', '.join(INTERFACES)}",
        )
    if request.objects is not None and (request.action != "read" or not request.full_table):
        raise ConnectorError(
            "InvalidRequest", "A batch of objects can only be read whole (read, full_table)"
        )
    if request.objects is not None and not isinstance(request.objects, list):
        raise ConnectorError(
            "InvalidRequest", f"The objects to read must be a list, not {describe(request.objects)}"
        )
    reads = request.action in ("read", "schema")
    if reads and request.interface == "bytes" and request.parser not in PARSERS:
        got = "no parser is set" if not request.parser else f"the parser is {request.parser!r}"
        raise ConnectorError(
            "ConfigurationError",
            f"The bytes interface needs a parser ({', '.join(PARSERS)}) to turn chunks into "
            f"rows, but {got}: set one on the connector",
        )


def _check_contract(request: SandboxRequest) -> None:
    """Stop with a ContractError when the static check finds errors."""
    problems = contract.check_code(request.code, request.interface)
    library_problems = contract.check_library(request.library_code or "")
    errors = contract.errors_only(problems)
    file = CONNECTOR_FILENAME
    if not errors:
        errors, file = contract.errors_only(library_problems), LIBRARY_FILENAME
    if not errors:
        return
    first = errors[0]
    prefix = "In the library: " if file == LIBRARY_FILENAME else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ConnectorError(
        "ContractError",
        f"{prefix}{first.message}{more}",
        line=first.line,
        file=file,
        extra={"problems": [p.to_dict() for p in errors]},
    )


@contextmanager
def _user_modules() -> Iterator[None]:
    """Restore sys.modules entries the connector and library replace (for in-process use)."""
    saved = {name: sys.modules.get(name) for name in (LIBRARY_MODULE, CONNECTOR_MODULE)}
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def load_connector(request: SandboxRequest) -> Connector:
    """Load the library as `library`, then execute the connector with its public names."""
    library = _new_module(LIBRARY_MODULE, LIBRARY_FILENAME)
    sys.modules[LIBRARY_MODULE] = library
    exec(compile_user_code(request.library_code or "", LIBRARY_FILENAME), library.__dict__)
    module = _new_module(CONNECTOR_MODULE, CONNECTOR_FILENAME)
    module.__dict__.update(public_names(library))
    sys.modules[CONNECTOR_MODULE] = module
    exec(compile_user_code(request.code, CONNECTOR_FILENAME), module.__dict__)
    return Connector(request, module.__dict__)


def _new_module(name: str, filename: str) -> types.ModuleType:
    """Create an empty module for user code."""
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__["__builtins__"] = builtins
    return module


def public_names(module: types.ModuleType) -> dict[str, Any]:
    """Return the names `from module import *` would give."""
    namespace = module.__dict__
    exported = namespace.get("__all__")
    if exported is not None:
        return {name: namespace[name] for name in exported if name in namespace}
    return {name: value for name, value in namespace.items() if not name.startswith("_")}


def call_context(connector: Connector) -> Any:
    """Call context(credentials=...) if defined; a falsy or missing result becomes {}."""
    func = connector.function("context")
    if func is None:
        return {}
    value = func(credentials=connector.request.credentials)
    return {} if _is_falsy(value) else value


def _is_falsy(value: Any) -> bool:
    """Say whether a value is falsy; values whose truth is ambiguous count as truthy."""
    try:
        return not value
    except Exception:  # e.g. a DataFrame raises on bool()
        return False


# ---------------------------------------------------------------- context


def run_context(connector: Connector) -> ActionOutcome:
    """Describe the context: one item per key of a mapping, else one for the whole object."""
    value = connector.context
    if isinstance(value, Mapping):
        items = [
            {
                "key": key if isinstance(key, str) else safe_repr(key),
                "type": type_name(item),
                "repr": safe_repr(item),
            }
            for key, item in value.items()
        ]
    else:
        items = [{"key": None, "type": type_name(value), "repr": safe_repr(value)}]
    return ActionOutcome(True, {"items": items})


# ---------------------------------------------------------------- list


def run_list(connector: Connector) -> ActionOutcome:
    """List the whole tree, or expand the one prefix given as request.object."""
    list_objects = connector.required("list_objects")
    prefix, limits = connector.request.object, connector.request.limits
    if prefix is None or prefix == {}:
        result = listing.list_tree(list_objects, connector.context, limits)
    else:
        _check_is_prefix(prefix)
        result = listing.expand_prefix(list_objects, connector.context, prefix, limits)
    if result.error is not None:
        return ActionOutcome(False, result.to_result(), listing_error(result, connector))
    return ActionOutcome(True, result.to_result())


def _check_is_prefix(prefix: Any) -> None:
    """Require request.object to be a prefix dict for a one-level expansion."""
    if not isinstance(prefix, dict) or prefix.get("is_prefix") is not True:
        raise ConnectorError(
            "InvalidRequest",
            f"Only a prefix (is_prefix True) can be expanded, not {safe_repr(prefix)}",
        )


def listing_error(result: listing.Listing, connector: Connector) -> dict[str, Any]:
    """Return the error that stopped a listing, with a hint for None-at-root mistakes."""
    assert result.error is not None
    error = user_error(result.error, _memory_mb(connector.request))
    at_root = result.error_prefix is None
    mentions_none = "NoneType" in (error.get("message") or "")
    if at_root and mentions_none and isinstance(result.error, (TypeError, AttributeError)):
        error["message"] += ROOT_METADATA_HINT
    return error


# ---------------------------------------------------------------- read


def run_read(connector: Connector) -> ActionOutcome:
    """Read one leaf (or each leaf of a batch) with the interface's reader."""
    if connector.request.objects is not None:
        return run_read_batch(connector)
    return read_object(connector, leaf_to_read(connector))


def run_read_batch(connector: Connector) -> ActionOutcome:
    """Read each leaf of request.objects in turn; a failure fails only its own item."""
    items: list[dict[str, Any]] = []
    tables: list[pa.Table | None] = []
    for leaf in connector.request.objects or []:
        try:
            outcome = read_object(connector, checked_leaf(leaf))
        except BaseException as exc:  # as in execute: user code may raise anything
            outcome = ActionOutcome(False, None, user_error(exc, _memory_mb(connector.request)))
        items.append({"ok": outcome.ok, "result": outcome.result, "error": outcome.error})
        tables.append(outcome.table)
    return ActionOutcome(True, {"batch": items}, tables=tables)


def read_object(connector: Connector, leaf: dict[str, Any]) -> ActionOutcome:
    """Read one leaf with the interface's reader; a preview keeps row_limit rows."""
    request = connector.request
    row_limit = None if request.full_table else request.limits.row_limit
    table, row_count, exact = read_leaf(connector, leaf, row_limit)
    truncated = row_limit is not None and (row_count > row_limit or not exact)
    if row_limit is not None:
        table = table.slice(0, row_limit)
    result = {
        "columns": tabular.table_columns(table),
        "row_count": row_count,
        "row_count_exact": exact,
        "truncated": truncated,
        "object": _object_summary(leaf),
    }
    if not request.full_table:
        result["profile"] = tabular.column_profile(table)  # of the rows shown
    return ActionOutcome(True, result, table=table)


def _object_summary(leaf: dict[str, Any]) -> dict[str, Any]:
    """Say which object was read, for the UI."""
    name = leaf.get("name")
    return {
        "name": name if isinstance(name, str) else safe_repr(name),
        "metadata": json_safe(leaf),
    }


def leaf_to_read(connector: Connector) -> dict[str, Any]:
    """Return request.object, or the first valid leaf of a lazy listing."""
    requested = connector.request.object
    if requested is not None:
        return checked_leaf(requested)
    list_objects = connector.required("list_objects")
    leaf, partial = listing.first_leaf(list_objects, connector.context, connector.request.limits)
    if partial.error is not None:
        raise ActionFailed(listing_error(partial, connector))
    if leaf is None:
        raise ConnectorError.about("NoObjects", _no_leaf_message(partial), list_objects)
    return leaf.item


def checked_leaf(requested: Any) -> dict[str, Any]:
    """Return a requested object when it is a leaf's dict; raise InvalidRequest otherwise."""
    if not isinstance(requested, dict):
        raise ConnectorError(
            "InvalidRequest", f"The object to read must be a dict, not {describe(requested)}"
        )
    if requested.get("is_prefix") is True:
        raise ConnectorError(
            "InvalidRequest",
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
    connector: Connector, leaf: dict[str, Any], row_limit: int | None
) -> tuple[pa.Table, int, bool]:
    """Call the reader on one leaf; return (table, row count, whether the count is exact)."""
    interface = connector.request.interface
    reader = connector.required(READERS[interface])
    try:
        if interface == "pandas":
            return _read_pandas(reader, connector.context, leaf, row_limit)
        if interface == "spark":
            return _read_spark(reader, connector, leaf, row_limit)
        return _read_bytes(reader, connector, leaf, row_limit)
    except ConnectorError as exc:
        raise _located(exc, reader) from None


def _read_pandas(
    reader: Callable[..., Any], context: Any, leaf: dict[str, Any], row_limit: int | None
) -> tuple[pa.Table, int, bool]:
    """Call read_pandas_dataframe and convert what it returned."""
    frame = reader(context=context, metadata=leaf)
    if not isinstance(frame, pd.DataFrame):
        hint = " (use series.to_frame())" if isinstance(frame, pd.Series) else ""
        raise ConnectorError.about(
            "ContractError",
            f"read_pandas_dataframe returned {describe(frame)}; it must return a pandas "
            f"DataFrame{hint}",
            reader,
        )
    row_count = len(frame)
    if row_limit is not None:
        frame = frame.head(row_limit)
    return tabular.dataframe_to_table(frame), row_count, True


def _read_bytes(
    reader: Callable[..., Any], connector: Connector, leaf: dict[str, Any], row_limit: int | None
) -> tuple[pa.Table, int, bool]:
    """Call read_bytes and parse its chunks with the connector's parser."""
    chunks = reader(context=connector.context, metadata=leaf)
    try:
        parser = connector.request.parser or ""
        table, stopped = tabular.read_chunks_table(tabular.iter_chunks(chunks), parser, row_limit)
    finally:
        listing.close_quietly(chunks)  # a preview may stop before the generator ends
    return table, table.num_rows, not stopped


def _read_spark(
    reader: Callable[..., Any], connector: Connector, leaf: dict[str, Any], row_limit: int | None
) -> tuple[pa.Table, int, bool]:
    """Call read_spark_dataframe, then fetch its first rows (or all) as Arrow and count it."""
    try:
        frame = reader(spark=connector.spark(), context=connector.context, metadata=leaf)
    except BaseException as exc:
        raise spark_error(exc, reader) from None
    if not _is_spark_dataframe(frame):
        raise ConnectorError.about(
            "ContractError",
            f"read_spark_dataframe returned {describe(frame)}; it must return a pyspark DataFrame",
            reader,
        )
    try:
        if row_limit is None:
            table = frame.toArrow()
            return table, table.num_rows, True
        table = frame.limit(row_limit).toArrow()
        return table, int(frame.count()), True
    except BaseException as exc:  # the plan runs here, outside the user's code
        raise spark_error(exc, reader) from None


def _is_spark_dataframe(value: Any) -> bool:
    """Recognise a pyspark DataFrame (Connect or classic)."""
    from pyspark.sql import DataFrame

    return isinstance(value, DataFrame)


def connect_spark(remote: str | None) -> Any:
    """Return a Spark Connect session to `remote` (reset when pooled); NotAvailable without."""
    if not remote:
        raise ConnectorError("NotAvailable", SPARK_NOT_AVAILABLE)
    session = spark_session_class().builder.remote(remote).create()
    if session_id_of(remote) is not None:
        try:
            reset_pooled_session(session)
        except Exception as exc:
            if SPARK_SESSION_GONE in str(exc):
                raise ConnectorError("SparkSessionClosed", SPARK_SESSION_CLOSED) from None
            raise
    return session


def reset_pooled_session(spark: Any) -> None:
    """Undo what an earlier run could have left in a shared session (see the module docstring).

    The four requests are independent: they run at once, so the reset costs one round trip.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        views = pool.submit(lambda: spark.sql("SHOW VIEWS IN global_temp").collect())
        functions = pool.submit(lambda: spark.sql("SHOW USER FUNCTIONS").collect())
        cleared = pool.submit(spark.catalog.clearCache)
        reset = pool.submit(lambda: spark.sql("RESET"))
        for future in (views, functions, cleared, reset):
            future.result()
    for view in views.result():
        if view["namespace"]:
            spark.catalog.dropGlobalTempView(view["viewName"])
        else:
            spark.catalog.dropTempView(view["viewName"])
    for function in functions.result():
        name = function["function"]
        if "." not in name:  # qualified names are persistent functions, not this session's
            spark.sql(f"DROP TEMPORARY FUNCTION IF EXISTS `{name.replace('`', '``')}`")


def release_spark(connector: Connector) -> None:
    """Release a Spark session so the server does not keep it; pooled sessions are kept."""
    session, connector.spark_session = connector.spark_session, None
    if session is None:
        return
    # The result is already computed; a failed release only costs server memory.
    with suppress(Exception):
        if session_id_of(connector.request.spark_remote) is None:
            session.stop()
        else:
            session.client.close()  # closes the channel only: the session stays for reuse


def spark_error(exc: BaseException, func: Callable[..., Any]) -> BaseException:
    """Turn a pyspark error into a ConnectorError at the user's line; return others as they are."""
    from pyspark.errors import PySparkException

    if not isinstance(exc, PySparkException):
        return exc
    frames = user_frames(exc.__traceback__)
    if frames:
        frame, line = frames[-1]
        function, file = frame.f_code.co_name, frame.f_code.co_filename
    else:
        function, line, file = function_location(func)
    message = without_jvm_trace(error_message(exc)).strip()
    return ConnectorError(
        type(exc).__name__,
        message or type(exc).__name__,
        function=function,
        line=line,
        file=file,
        extra={"traceback": without_jvm_trace(user_traceback(exc))},
    )


def _located(exc: ConnectorError, func: Callable[..., Any]) -> ConnectorError:
    """Point an engine-raised error at a user function's def when it has no location yet."""
    if exc.function is None:
        exc.function, exc.line, exc.file = function_location(func)
    return exc


# ---------------------------------------------------------------- schema


def run_schema(connector: Connector) -> ActionOutcome:
    """Compare infer_schema's declared schema (if any) with a sample read from one leaf."""
    leaf = leaf_to_read(connector)
    infer = connector.function("infer_schema")
    declared = declared_schema(connector, infer, leaf) if infer is not None else None
    result: dict[str, Any] = {"declared": declared, "sampled": None, "differences": []}
    row_limit = max(connector.request.limits.row_limit, SCHEMA_SAMPLE_ROWS)
    try:
        table, _, _ = read_leaf(connector, leaf, row_limit)
    except BaseException as exc:  # keep the declared schema when sampling fails
        raise ActionFailed(user_error(exc, _memory_mb(connector.request)), result) from None
    result["sampled"] = tabular.sampled_schema_fields(table)
    if declared is not None:
        result["differences"] = tabular.schema_differences(declared, result["sampled"])
    return ActionOutcome(True, result)


def declared_schema(
    connector: Connector, infer: Callable[..., Any], leaf: dict[str, Any]
) -> list[dict[str, Any]]:
    """Call infer_schema with the arguments it names and convert what it returns."""
    try:
        returned = infer(**infer_schema_arguments(connector, infer, leaf))
    except BaseException as exc:
        raise spark_error(exc, infer) from None
    fields = schema_fields(returned)
    if fields is None:
        raise ConnectorError.about(
            "ContractError",
            f"infer_schema returned {describe(returned)}; it must return a pyspark StructType "
            "or a DataFrame (pandas, pyarrow or pyspark)",
            infer,
        )
    return fields


def infer_schema_arguments(
    connector: Connector, infer: Callable[..., Any], leaf: dict[str, Any]
) -> dict[str, Any]:
    """Bind infer_schema's parameters by name; `spark` connects on first use."""
    available = {
        "context": connector.context,
        "metadata": leaf,
        "credentials": connector.request.credentials,
    }
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(infer).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update({k: v for k, v in available.items() if k not in arguments})
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        elif name == "spark":
            try:
                arguments[name] = connector.spark()
            except ConnectorError as exc:
                raise _located(exc, infer) from None
        elif name in available:
            arguments[name] = available[name]
    return arguments


def schema_fields(value: Any) -> list[dict[str, Any]] | None:
    """Return the fields of a StructType, DataFrame, Arrow table or schema; None otherwise."""
    if _is_struct_type(value):
        return tabular.spark_schema_fields(value)
    if isinstance(value, pd.DataFrame):
        return tabular.pandas_schema_fields(value)
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return tabular.arrow_schema_fields(value.schema)
    if isinstance(value, pa.Schema):
        return tabular.arrow_schema_fields(value)
    if type(value).__module__.startswith("pyspark") and hasattr(value, "schema"):
        schema = value.schema  # a pyspark DataFrame (classic or Connect)
        return tabular.spark_schema_fields(schema) if _is_struct_type(schema) else None
    return None


def _is_struct_type(value: Any) -> bool:
    """Recognise a pyspark StructType without importing pyspark."""
    kind = type(value)
    return kind.__name__ == "StructType" and kind.__module__.startswith("pyspark")


ACTION_HANDLERS: dict[str, Callable[[Connector], ActionOutcome]] = {
    "context": run_context,
    "list": run_list,
    "read": run_read,
    "schema": run_schema,
}
