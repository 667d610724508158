"""Structured errors: innermost user function, user line, user-frames-only tracebacks."""

from __future__ import annotations

import textwrap

from connector_engine.child.errors import compile_user_code, error_message, user_error
from connector_engine.user_code import CONNECTOR_FILENAME
from connector_engine.values import safe_repr
from tests.engine.helpers import run, with_reader


def raise_from(code: str, call: str) -> BaseException:
    namespace: dict = {}
    exec(compile_user_code(textwrap.dedent(code), CONNECTOR_FILENAME), namespace)
    try:
        eval(call, namespace)
    except BaseException as exc:
        return exc
    raise AssertionError("no exception")


def test_innermost_user_function_and_line():
    exc = raise_from(
        """
        import json

        def outer():
            return inner()

        def inner():
            return json.loads("{bad")
        """,
        "outer()",
    )
    error = user_error(exc)
    assert error["type"] == "JSONDecodeError"
    assert error["function"] == "inner"
    assert error["line"] == 8
    assert error["file"] == CONNECTOR_FILENAME
    trace = error["traceback"]
    assert 'File "<connector>", line 5, in outer' in trace
    assert 'File "<connector>", line 8, in inner' in trace
    assert 'return json.loads("{bad")' in trace  # the user's source line is shown
    assert "json/decoder.py" not in trace  # library frames are hidden
    assert "runs/runtime" not in trace


def test_chained_exceptions_keep_user_frames_only():
    exc = raise_from(
        """
        def f():
            try:
                {}["k"]
            except KeyError as exc:
                raise ValueError("no k") from exc
        """,
        "f()",
    )
    trace = user_error(exc)["traceback"]
    assert "KeyError" in trace
    assert "direct cause" in trace
    assert "ValueError: no k" in trace


def test_system_exit_message():
    assert error_message(SystemExit(2)) == (
        "The connector called sys.exit(2): return a value or raise an exception instead"
    )


def test_memory_error_mentions_the_limit():
    assert "512 MB" in error_message(MemoryError(), memory_mb=512)


def test_broken_str_and_repr_do_not_break_errors():
    class Weird(Exception):
        def __str__(self):
            raise RuntimeError("no str")

    class BadRepr:
        def __repr__(self):
            raise ValueError("nope")

    assert user_error(Weird())["message"] == "Weird"
    assert safe_repr(BadRepr()) == "<repr failed: ValueError: nope>"


def test_sys_exit_in_a_reader():
    code = """
    import sys

    def list_objects(context, metadata):
        yield {"name": "a", "fingerprint": "1"}

    def read_pandas_dataframe(context, metadata):
        sys.exit(2)
    """
    outcome = run("read", code)
    assert not outcome.ok
    assert outcome.error["type"] == "SystemExit"
    assert outcome.error["message"] == (
        "The connector called sys.exit(2): return a value or raise an exception instead"
    )
    assert outcome.error["function"] == "read_pandas_dataframe"
    assert outcome.error["line"] == 8


def test_memory_error_in_user_code_mentions_request_limit():
    from connector_engine.protocol import Limits

    code = """
    def list_objects(context, metadata):
        raise MemoryError()
    """
    outcome = run("list", with_reader(code), limits=Limits(memory_mb=300))
    assert outcome.error["type"] == "MemoryError"
    assert "300 MB" in outcome.error["message"]


def test_error_in_library_points_into_the_library():
    library = """
    def fetch(path):
        # a comment line
        raise FileNotFoundError(path)
    """
    code = """
    import library

    def list_objects(context, metadata):
        yield {"name": "a", "fingerprint": "1"}

    def read_pandas_dataframe(context, metadata):
        return library.fetch("/data/" + metadata["name"])
    """
    outcome = run("read", code, library_code=library)
    error = outcome.error
    assert error["type"] == "FileNotFoundError"
    assert error["function"] == "fetch"
    assert error["line"] == 4
    assert error["file"] == "<library>"
    lines = error["traceback"].splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == '  File "<connector>", line 8, in read_pandas_dataframe'
    assert 'File "<library>", line 4, in fetch' in error["traceback"]
    assert "raise FileNotFoundError(path)" in error["traceback"]
    assert "actions.py" not in error["traceback"]


def test_error_at_module_level():
    code = "import no_such_module_xyz\n\ndef list_objects(context, metadata):\n    yield {}\n"
    outcome = run("list", with_reader(code))
    assert outcome.error["type"] == "ModuleNotFoundError"
    assert outcome.error["function"] == "<module>"
    assert outcome.error["line"] == 1


def test_library_syntax_error_is_a_contract_error():
    outcome = run(
        "list",
        with_reader("def list_objects(context, metadata):\n    yield {}\n"),
        library_code="def broken(:\n",
    )
    assert outcome.error["type"] == "ContractError"
    assert outcome.error["message"].startswith("In the library: Syntax error")
    assert outcome.error["file"] == "<library>"
