"""Run one action (context, list, read, schema, test) on a connector: the child's single entry.

`execute` is what the sandbox's connector process and Spark's Python workers call. It never
raises: every failure becomes ActionOutcome(ok=False, error={...}). It does not fork, limit,
capture output or mask secrets; the sandbox (or the Spark data source) around it does.

Decisions:
- The request is checked first (known action, interface and parser), then the code's static
  contract (the reader is required only by READER_ACTIONS: context and list run without it):
  errors stop everything with type "ContractError" and all problems attached under
  error["problems"]. Runtime contract violations (a reader returning None, list_objects
  returning a non-iterable) are "ContractError" too, located at the function's def line.
- Then the library and connector are loaded (child.loader), context() is called once, and the
  action's handler runs: `context` and `list` here, `read` in child.reads, `schema` in
  child.schema, `test` in child.connector_tests (the only caller of test_* functions). A Spark
  session opened on the way is released at the end (child.spark_client).
- `list`: ok is True when the listing ran, even with validation problems (they are data about
  the connector); ok is False when list_objects raised, and the objects listed before the
  exception are still in the result. request.object None or {} lists from the root.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector_engine import contract, parsers
from connector_engine.child import listing
from connector_engine.child.connector_tests import run_tests
from connector_engine.child.errors import memory_limit_mb, user_error
from connector_engine.child.loader import (
    LoadedConnector,
    call_context,
    load_connector,
    user_modules,
)
from connector_engine.child.reads import run_read
from connector_engine.child.results import ActionFailed, ActionOutcome
from connector_engine.child.schema import run_schema
from connector_engine.protocol import (
    ACTIONS,
    INTERFACES,
    PARSERS,
    Action,
    ErrorType,
    Interface,
    SandboxRequest,
)
from connector_engine.user_code import CONNECTOR_FILENAME, LIBRARY_FILENAME, ConnectorError
from connector_engine.values import describe, safe_repr, type_name


def execute(request: SandboxRequest) -> ActionOutcome:
    """Run the request's action on its connector; never raise."""
    memory_mb = memory_limit_mb(request)
    try:
        with user_modules():
            return _execute(request)
    except ActionFailed as failed:
        return ActionOutcome(False, failed.result, failed.error)
    except BaseException as exc:  # user code may raise anything, SystemExit included
        return ActionOutcome(False, None, user_error(exc, memory_mb))


def _execute(request: SandboxRequest) -> ActionOutcome:
    """Validate, load the connector, build its context and run the action."""
    _check_request(request)
    _check_contract(request)
    connector = load_connector(request)
    connector.context = call_context(connector)
    try:
        return ACTION_HANDLERS[request.action](connector)
    finally:
        connector.release_spark()


def _check_request(request: SandboxRequest) -> None:
    """Reject actions, interfaces and parsers the engine does not know."""
    if request.action not in ACTIONS:
        raise ConnectorError(ErrorType.INVALID_REQUEST, f"Unknown action {request.action!r}")
    if request.interface not in INTERFACES:
        raise ConnectorError(
            ErrorType.INVALID_REQUEST,
            f"Unknown interface {request.interface!r}: use one of {', '.join(INTERFACES)}",
        )
    batch = request.objects is not None
    if batch and (request.action != Action.READ or not request.full_table):
        raise ConnectorError(
            ErrorType.INVALID_REQUEST,
            "A batch of objects can only be read whole (read, full_table)",
        )
    if batch and not isinstance(request.objects, list):
        raise ConnectorError(
            ErrorType.INVALID_REQUEST,
            f"The objects to read must be a list, not {describe(request.objects)}",
        )
    reads = request.action in (Action.READ, Action.SCHEMA)
    if reads and request.interface == Interface.BYTES and request.parser not in PARSERS:
        got = "no parser is set" if not request.parser else f"the parser is {request.parser!r}"
        raise ConnectorError(
            ErrorType.CONFIGURATION_ERROR,
            f"The bytes interface needs a parser ({', '.join(PARSERS)}) to turn chunks into "
            f"rows, but {got}: set one on the connector",
        )
    if reads and request.interface == Interface.BYTES:
        parsers.parser_options(request.parser, request.parser_options)  # a bad one stops here


# Actions that need the interface's reader; context and list run without it (step by step).
READER_ACTIONS = (Action.READ, Action.SCHEMA, Action.TEST)


def _check_contract(request: SandboxRequest) -> None:
    """Stop with a ContractError when the static check finds errors."""
    reader_required = request.action in READER_ACTIONS
    problems = contract.check_code(request.code, request.interface, reader_required=reader_required)
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
        ErrorType.CONTRACT_ERROR,
        f"{prefix}{first.message}{more}",
        line=first.line,
        file=file,
        extra={"problems": [p.to_dict() for p in errors]},
    )


def run_context(connector: LoadedConnector) -> ActionOutcome:
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


def run_list(connector: LoadedConnector) -> ActionOutcome:
    """List the whole tree, or expand the one prefix given as request.object."""
    list_objects = connector.required("list_objects")
    prefix, limits = connector.request.object, connector.request.limits
    if prefix is None or prefix == {}:
        result = listing.list_tree(list_objects, connector.context, limits)
    else:
        _check_is_prefix(prefix)
        result = listing.expand_prefix(list_objects, connector.context, prefix, limits)
    if result.error is not None:
        error = listing.listing_error(result, memory_limit_mb(connector.request))
        return ActionOutcome(False, result.to_result(), error)
    return ActionOutcome(True, result.to_result())


def _check_is_prefix(prefix: Any) -> None:
    """Require request.object to be a prefix dict for a one-level expansion."""
    if not isinstance(prefix, dict) or prefix.get("is_prefix") is not True:
        raise ConnectorError(
            ErrorType.INVALID_REQUEST,
            f"Only a prefix (is_prefix True) can be expanded, not {safe_repr(prefix)}",
        )


ACTION_HANDLERS: dict[str, Callable[[LoadedConnector], ActionOutcome]] = {
    Action.CONTEXT: run_context,
    Action.LIST: run_list,
    Action.READ: run_read,
    Action.SCHEMA: run_schema,
    Action.TEST: run_tests,  # the only caller of test_* functions
}
