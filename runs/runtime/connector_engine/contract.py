"""Static checks of connector code against the connector contract.

Pure `ast` analysis: nothing is executed, so the web editor can call `check_code` on every
keystroke. It never raises. Lines are 1-based; columns are 1-based too (ast's are 0-based).

What is checked: syntax; that `list_objects` exists; that the interface's reader exists (a
warning while writing: context and listing previews run without it; an error with
`reader_required`, for a partition read, a schema, tests and ingests); that no reader of another
interface is defined; that `warm_up`, `context`, `list_objects`, the reader and `infer_schema`
accept the keyword call the engine makes. Functions are found at module level, including inside
top-level `if`/`try`/`with` blocks. A name bound another way (assignment, import) counts as
defined but its signature cannot be checked; after `from x import *` a missing function is only
a warning (the engine re-checks after executing the module). Decorated functions are not
signature-checked because a decorator may change the signature.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from connector_engine.protocol import (
    INFER_SCHEMA_PARAMETERS,
    INTERFACES,
    READER_PARAMETERS,
    READERS,
    Action,
    Interface,
)
from connector_engine.user_code import CONNECTOR_FILENAME

ERROR = "error"
WARNING = "warning"

# Parameters the engine passes by keyword to each non-reader contract function.
FUNCTION_PARAMETERS: dict[str, tuple[str, ...]] = {
    "warm_up": (),
    "context": ("credentials",),
    "list_objects": ("context", "metadata"),
    **READER_PARAMETERS,
}

_FunctionDef = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Problem:
    """One finding of the static check, located in the connector code."""

    line: int
    column: int
    message: str
    severity: str = ERROR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Definitions:
    """Module-level names: function defs (last one wins) and other bindings."""

    functions: dict[str, _FunctionDef]
    redefined: list[_FunctionDef]
    other_names: dict[str, int]
    star_import: bool


def check_code(code: str, interface: str, *, reader_required: bool = False) -> list[Problem]:
    """Check connector code against the contract for `interface`; never raise.

    A missing reader is a warning unless `reader_required` (the request reads a partition)."""
    try:
        return _check_code(code, interface, reader_required)
    except (RecursionError, MemoryError):
        return [Problem(1, 1, "The code is too deeply nested to check")]
    except Exception as exc:  # the checker must not break the editor
        return [Problem(1, 1, f"Internal error while checking the code: {exc!r}", WARNING)]


def check_library(code: str) -> list[Problem]:
    """Check a connection's library code (syntax only); never raise."""
    try:
        return _parse(code)[1]
    except Exception as exc:
        return [Problem(1, 1, f"Internal error while checking the code: {exc!r}", WARNING)]


def errors_only(problems: list[Problem]) -> list[Problem]:
    """Return the problems with severity error."""
    return [problem for problem in problems if problem.severity == ERROR]


def missing_reader_message(interface: str, hint: str = "") -> str:
    """Say which reader an interface needs to read a partition, and where to start."""
    reader = READERS[interface]
    params = ", ".join(READER_PARAMETERS[reader])
    return (
        f"The {interface} interface needs {reader}({params}) to read a partition; "
        f"add it (see the template){hint}."
    )


def _check_code(code: str, interface: str, reader_required: bool = False) -> list[Problem]:
    """Run every check; a syntax error stops the others."""
    tree, problems = _parse(code)
    if tree is None:
        return problems
    if interface not in INTERFACES:
        return [Problem(1, 1, f"Unknown interface {interface!r}: use one of {_names(INTERFACES)}")]
    defs = _collect_definitions(tree)
    problems += _check_presence(defs, interface, reader_required)
    problems += _check_other_readers(defs, interface)
    problems += _check_redefinitions(defs)
    for name in ("warm_up", "context", "list_objects", READERS[interface]):
        if name in defs.functions:
            problems += _check_signature(defs.functions[name], FUNCTION_PARAMETERS[name])
    if "infer_schema" in defs.functions:
        problems += _check_infer_schema(defs.functions["infer_schema"], interface)
    return sorted(problems, key=lambda p: (p.line, p.column))


def _parse(code: str) -> tuple[ast.Module | None, list[Problem]]:
    """Parse the code, turning a syntax error into a located problem."""
    try:
        return ast.parse(code, filename=CONNECTOR_FILENAME), []
    except SyntaxError as exc:
        line = exc.lineno or 1
        column = exc.offset or 1
        return None, [Problem(line, column, f"Syntax error: {exc.msg}")]
    except ValueError as exc:  # e.g. a NUL byte in the source
        return None, [Problem(1, 1, f"The code cannot be parsed: {exc}")]


def _top_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield module statements, descending into if/try/with blocks but not into defs."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.For, ast.While)):
            yield from _top_level_statements(node.body)
            yield from _top_level_statements(node.orelse)
        elif isinstance(node, ast.With):
            yield from _top_level_statements(node.body)
        elif isinstance(node, ast.Try | ast.TryStar):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level_statements(block)
            for handler in node.handlers:
                yield from _top_level_statements(handler.body)


def _collect_definitions(tree: ast.Module) -> _Definitions:
    """Find module-level function definitions and other bindings of names."""
    defs = _Definitions({}, [], {}, False)
    for node in _top_level_statements(tree.body):
        if isinstance(node, _FunctionDef):
            if node.name in defs.functions:
                defs.redefined.append(defs.functions[node.name])
            defs.functions[node.name] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    defs.star_import = True
                else:
                    bound = alias.asname or alias.name.split(".")[0]
                    defs.other_names.setdefault(bound, node.lineno)
        else:
            for name in _assigned_names(node):
                defs.other_names.setdefault(name, node.lineno)
    return defs


def _assigned_names(node: ast.stmt) -> Iterator[str]:
    """Yield simple names bound by an assignment or class statement."""
    if isinstance(node, ast.ClassDef):
        yield node.name
        return
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                yield sub.id


def _is_defined(defs: _Definitions, name: str) -> bool:
    """Say whether a module-level name is bound by a def, an assignment or an import."""
    return name in defs.functions or name in defs.other_names


def _check_presence(defs: _Definitions, interface: str, reader_required: bool) -> list[Problem]:
    """Require list_objects; want the interface's reader (required when reading a partition)."""
    problems = []
    severity = WARNING if defs.star_import else ERROR
    hint = " (unless the star import provides it)" if defs.star_import else ""
    if not _is_defined(defs, "list_objects"):
        problems.append(
            Problem(
                1,
                1,
                "The connector must define list_objects(context, metadata), which yields the "
                f"objects (partitions) to read{hint}",
                severity,
            )
        )
    reader = READERS[interface]
    # A reader of another interface gets its own "rename it" error, which says it all.
    other_reader = any(_is_defined(defs, r) for i, r in READERS.items() if i != interface)
    if not _is_defined(defs, reader) and not other_reader:
        message = missing_reader_message(interface, hint)
        if not reader_required:
            # Step by step: context and listing previews run before the reader is written.
            message += " Context and listing previews work without it."
        problems.append(Problem(1, 1, message, severity if reader_required else WARNING))
    return problems


def _check_other_readers(defs: _Definitions, interface: str) -> list[Problem]:
    """Reject readers that belong to a different interface."""
    problems = []
    for other_interface, reader in READERS.items():
        if other_interface == interface or not _is_defined(defs, reader):
            continue
        node = defs.functions.get(reader)
        line = node.lineno if node else defs.other_names[reader]
        column = node.col_offset + 1 if node else 1
        problems.append(
            Problem(
                line,
                column,
                f"This module defines {reader} but the connector's interface is {interface}: "
                f"rename it to {READERS[interface]} or change the interface to {other_interface}",
            )
        )
    return problems


def _check_redefinitions(defs: _Definitions) -> list[Problem]:
    """Warn about contract functions defined twice (the last definition wins)."""
    contract_names = set(FUNCTION_PARAMETERS) | {"infer_schema"}
    return [
        Problem(
            node.lineno,
            node.col_offset + 1,
            f"{node.name} is defined again on line {defs.functions[node.name].lineno}; "
            "this definition is ignored",
            WARNING,
        )
        for node in defs.redefined
        if node.name in contract_names
    ]


def _check_signature(node: _FunctionDef, expected: tuple[str, ...]) -> list[Problem]:
    """Check that a function accepts exactly the keyword call the engine makes."""
    problems = _check_callable_kind(node)
    if node.decorator_list:
        return problems
    args = node.args
    call = f"{node.name}({', '.join(f'{name}=...' for name in expected)})"
    problems += _positional_only_problems(node)
    # Positional-only names are already reported above; don't also call them missing.
    accepted = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    if args.kwarg is None:
        for name in expected:
            if name not in accepted:
                problems.append(
                    _at(
                        node,
                        f"{node.name} is missing the parameter `{name}`: the engine calls {call}; "
                        f"add `{name}` (or **kwargs)",
                    )
                )
    for name in _required_parameters(args):
        if name not in expected:
            problems.append(
                _at(
                    node,
                    f"{node.name} has a required parameter `{name}` the engine never passes "
                    f"(it calls {call}): remove it or give it a default",
                )
            )
    return problems


def _check_infer_schema(node: _FunctionDef, interface: str) -> list[Problem]:
    """Check infer_schema, whose parameters are bound by name from a fixed set."""
    problems = _check_callable_kind(node)
    if node.decorator_list:
        return problems
    args = node.args
    problems += _positional_only_problems(node)
    allowed = _names(INFER_SCHEMA_PARAMETERS)
    required = set(_required_parameters(args))
    for arg in args.args + args.kwonlyargs:
        if arg.arg in INFER_SCHEMA_PARAMETERS:
            continue
        if arg.arg in required:
            message = (
                f"infer_schema has a parameter `{arg.arg}` the engine cannot bind: parameters "
                f"are bound by name and may only be {allowed}"
            )
            problems.append(_at(node, message))
        else:
            message = (
                f"infer_schema's parameter `{arg.arg}` is never passed (only {allowed} are); "
                "its default is always used"
            )
            problems.append(_at(node, message, WARNING))
    return problems


def _check_callable_kind(node: _FunctionDef) -> list[Problem]:
    """Reject async contract functions: the engine calls them synchronously."""
    if isinstance(node, ast.AsyncFunctionDef):
        return [_at(node, f"{node.name} must be a plain def, not async def")]
    return []


def _positional_only_problems(node: _FunctionDef) -> list[Problem]:
    """Reject positional-only parameters: the engine passes every argument by keyword."""
    return [
        _at(
            node,
            f"{node.name}'s parameter `{arg.arg}` is positional-only (before `/`), but the "
            "engine passes arguments by keyword: remove the `/`",
        )
        for arg in node.args.posonlyargs
    ]


def _required_parameters(args: ast.arguments) -> list[str]:
    """Return keyword-passable parameters that have no default."""
    positional = args.args
    without_default = positional[: len(positional) - len(args.defaults)]
    names = [a.arg for a in without_default]
    names += [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    return names


def _at(node: _FunctionDef, message: str, severity: str = ERROR) -> Problem:
    """Return a problem located at a def statement."""
    return Problem(node.lineno, node.col_offset + 1, message, severity)


def _names(names: tuple[str, ...]) -> str:
    """Join names as 'a, b, c or d'."""
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def needs_spark(code: str, action: str, interface: str) -> bool:
    """Say whether a request will use `spark`: a spark read or schema, infer_schema(spark), or
    tests of which one asks for `spark`."""
    if action == Action.TEST:
        return _a_test_asks_for_spark(code)
    if action not in (Action.READ, Action.SCHEMA):
        return False
    if interface == Interface.SPARK:
        return True
    if action != Action.SCHEMA:
        return False
    tree, _ = _parse(code)
    if tree is None:
        return False
    infer = _collect_definitions(tree).functions.get("infer_schema")
    if infer is None:
        return False
    args = infer.args
    return "spark" in {a.arg for a in args.args + args.kwonlyargs}  # **kwargs never gets spark


def _a_test_asks_for_spark(code: str) -> bool:
    """Say whether a module-level test_* function has a `spark` parameter."""
    tree, _ = _parse(code)
    if tree is None:
        return False
    return any(
        name.startswith("test_")
        and "spark" in {a.arg for a in node.args.args + node.args.kwonlyargs}
        for name, node in _collect_definitions(tree).functions.items()
    )
