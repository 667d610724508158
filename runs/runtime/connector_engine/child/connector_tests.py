"""Run a connector's tests: its module-level `test_*` functions, on demand (action "test").

Only this action calls them; previews and ingests call the contract functions by name and
nothing else. Each test is called with fixtures bound by parameter name: `credentials` (the
string), `context` (what context() returned), `objects` (the listing's leaves, as
list_objects yielded them, bounded by the request's max_objects; listed once, on first use)
and `spark` (a Spark Connect session, only for a test that asks for it). Each reports
passed, failed (an AssertionError) or error (any other exception), its message, duration
and what it printed. A failing `assert a <op> b` also reports both sides' values, evaluated
again in the failing frame, as pytest shows them.
"""

from __future__ import annotations

import ast
import inspect
import io
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

from connector_engine.child import listing
from connector_engine.child.errors import memory_limit_mb, user_error, user_frames
from connector_engine.child.loader import CONNECTOR_MODULE, LoadedConnector
from connector_engine.child.results import ActionOutcome
from connector_engine.output import cap_text
from connector_engine.protocol import ErrorType, make_error
from connector_engine.user_code import LIBRARY_FILENAME
from connector_engine.values import safe_repr

TEST_PREFIX = "test_"
FIXTURES = ("credentials", "context", "objects", "spark")
MAX_TEST_LOG_BYTES = 20_000
MAX_TESTS = 1_000
PASSED, FAILED, ERROR = "passed", "failed", "error"


def connector_test_functions(namespace: dict[str, Any]) -> list[tuple[str, Callable[..., Any]]]:
    """The connector module's own test_* functions, in definition order."""
    return [
        (name, value)
        for name, value in namespace.items()
        if name.startswith(TEST_PREFIX)
        and inspect.isfunction(value)
        and value.__module__ == CONNECTOR_MODULE
    ][:MAX_TESTS]


def run_tests(connector: LoadedConnector) -> ActionOutcome:
    """Run every test; ok when none failed or erred."""
    fixtures = Fixtures(connector)
    reports = [
        run_one(name, func, fixtures)
        for name, func in connector_test_functions(connector.namespace)
    ]
    counts = {
        key: sum(r["outcome"] == outcome for r in reports)
        for key, outcome in (("passed", PASSED), ("failed", FAILED), ("errors", ERROR))
    }
    result = {"tests": reports, **counts, "total": len(reports)}
    bad = [r["name"] for r in reports if r["outcome"] != PASSED]
    if not bad:
        return ActionOutcome(True, result)
    error = make_error(
        ErrorType.TESTS_FAILED,
        f"{len(bad)} of {len(reports)} tests did not pass: {', '.join(bad[:10])}",
    )
    return ActionOutcome(False, result, error)


class Fixtures:
    """The values tests may ask for by parameter name; `objects` is listed once, lazily."""

    def __init__(self, connector: LoadedConnector) -> None:
        self.connector = connector
        self._leaves: list[dict[str, Any]] | None = None

    def value(self, name: str) -> Any:
        if name == "credentials":
            return self.connector.request.credentials
        if name == "context":
            return self.connector.context
        if name == "spark":
            return self.connector.spark()
        return [dict(leaf) for leaf in self.leaves()]

    def leaves(self) -> list[dict[str, Any]]:
        if self._leaves is None:
            list_objects = self.connector.required("list_objects")
            limits = self.connector.request.limits
            found = listing.list_tree(list_objects, self.connector.context, limits)
            if found.error is not None:
                raise found.error
            self._leaves = [obj.item for obj in found.objects if not obj.is_prefix]
        return self._leaves


def run_one(name: str, func: Callable[..., Any], fixtures: Fixtures) -> dict[str, Any]:
    """Call one test with its fixtures; report how it went."""
    report: dict[str, Any] = {"name": name, "line": _def_line(func), "message": ""}
    output = io.StringIO()
    started = time.perf_counter()
    try:
        with redirect_stdout(output), redirect_stderr(output):
            func(**_arguments(name, func, fixtures))
        report["outcome"] = PASSED
    except AssertionError as exc:
        report.update(outcome=FAILED, **assertion_report(exc, fixtures.connector))
    except BaseException as exc:  # user code may raise anything, SystemExit included
        error = user_error(exc, memory_limit_mb(fixtures.connector.request))
        report.update(
            outcome=ERROR,
            message=f"{error['type']}: {error['message']}",
            line=error["line"] or report["line"],
            traceback=error["traceback"],
        )
    report["duration_ms"] = round((time.perf_counter() - started) * 1000)
    report["logs"] = cap_text(output.getvalue(), MAX_TEST_LOG_BYTES)
    return report


def _arguments(name: str, func: Callable[..., Any], fixtures: Fixtures) -> dict[str, Any]:
    if inspect.iscoroutinefunction(func):
        raise TypeError(f"{name} must be a plain def, not async def")
    arguments = {}
    for parameter in inspect.signature(func).parameters.values():
        if parameter.name in FIXTURES and parameter.kind not in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
            parameter.POSITIONAL_ONLY,
        ):
            arguments[parameter.name] = fixtures.value(parameter.name)
        elif parameter.default is parameter.empty and parameter.kind not in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            raise TypeError(
                f"{name} asks for `{parameter.name}`, which is not a fixture: tests may ask "
                f"for {', '.join(FIXTURES)}"
            )
    return arguments


def assertion_report(exc: AssertionError, connector: LoadedConnector) -> dict[str, Any]:
    """The message, line and, for a comparison, both sides' values of a failed assert."""
    error = user_error(exc)
    report: dict[str, Any] = {"line": error["line"], "traceback": error["traceback"]}
    given = str(exc)
    frames = user_frames(exc.__traceback__)
    node = None
    if frames:
        frame, line = frames[-1]
        source = (
            connector.request.library_code
            if frame.f_code.co_filename == (LIBRARY_FILENAME)
            else connector.request.code
        )
        node = _assert_at(source or "", line)
    if node is None:
        report["message"] = given or "AssertionError"
        return report
    report["expression"] = ast.unparse(node.test)
    compared = _compared_values(node.test, frame)
    if compared is None:
        shown = f"assert {report['expression']}"
    else:
        left, op, right = compared
        report["left"], report["right"] = safe_repr(left), safe_repr(right)
        shown = f"assert {report['left']} {op} {report['right']}"
        if f"assert {report['expression']}" != shown:
            shown += f"\n where: {report['expression']}"
    report["message"] = f"{given}\n{shown}" if given else shown
    return report


def _assert_at(source: str, line: int) -> ast.Assert | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert) and node.lineno <= line <= (node.end_lineno or line)
    ]
    return max(found, key=lambda node: node.lineno) if found else None


_OPERATORS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _compared_values(test: ast.expr, frame: Any) -> tuple[Any, str, Any] | None:
    """Evaluate a single comparison's two sides again in the failing frame; None otherwise."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return None
    try:
        values = [
            eval(compile(ast.Expression(side), "<assert>", "eval"), frame.f_globals, frame.f_locals)
            for side in (test.left, test.comparators[0])
        ]
    except Exception:
        return None
    return values[0], _OPERATORS.get(type(test.ops[0]), "?"), values[1]


def _def_line(func: Callable[..., Any]) -> int | None:
    code = getattr(func, "__code__", None)
    return code.co_firstlineno if code is not None else None
