"""Static contract checks: located, specific problems without running anything."""

from __future__ import annotations

import textwrap

import pytest

from connector_engine.contract import ERROR, WARNING, Problem, check_code, check_library


def problems(code: str, interface: str = "pandas") -> list[Problem]:
    return check_code(textwrap.dedent(code), interface)


def errors(code: str, interface: str = "pandas") -> list[Problem]:
    return [p for p in problems(code, interface) if p.severity == ERROR]


VALID_PANDAS = """
def context(credentials):
    return {}

def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    return None
"""


def test_valid_connector_has_no_problems():
    assert problems(VALID_PANDAS) == []


def test_syntax_error_has_line_and_column():
    found = problems("def list_objects(context, metadata):\n    yield {\n\nx = )\n")
    assert len(found) == 1
    assert found[0].message.startswith("Syntax error")
    assert found[0].line >= 2
    assert found[0].column >= 1
    assert found[0].to_dict()["severity"] == "error"


def test_missing_list_objects():
    found = errors("def read_pandas_dataframe(context, metadata):\n    pass\n")
    assert [p.message for p in found if "list_objects" in p.message]
    assert found[0].line == 1


@pytest.mark.parametrize(
    ("interface", "reader"),
    [
        ("pandas", "read_pandas_dataframe"),
        ("spark", "read_spark_dataframe"),
        ("bytes", "read_bytes"),
    ],
)
def test_missing_reader_is_a_warning_while_writing(interface, reader):
    # Step by step: context and listing previews run before the reader is written.
    found = problems("def list_objects(context, metadata):\n    yield {}\n", interface)
    assert len(found) == 1
    assert found[0].severity == WARNING
    assert reader in found[0].message
    assert interface in found[0].message
    assert "Context and listing previews work without it" in found[0].message


@pytest.mark.parametrize(
    ("interface", "call"),
    [
        ("pandas", "read_pandas_dataframe(context, metadata)"),
        ("spark", "read_spark_dataframe(spark, context, metadata)"),
        ("bytes", "read_bytes(context, metadata)"),
    ],
)
def test_missing_reader_is_an_error_when_a_partition_is_read(interface, call):
    code = "def list_objects(context, metadata):\n    yield {}\n"
    found = check_code(code, interface, reader_required=True)
    assert [p.severity for p in found] == [ERROR]
    assert found[0].message == (
        f"The {interface} interface needs {call} to read a partition; add it (see the template)."
    )


def test_reader_of_another_interface_is_an_error_at_its_def_line():
    code = """
    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass

    def read_bytes(context, metadata):
        yield b""
    """
    found = errors(code, "pandas")
    assert len(found) == 1
    assert "defines read_bytes but the connector's interface is pandas" in found[0].message
    assert "rename it" in found[0].message
    assert found[0].line == 8
    assert found[0].column == 1


def test_reader_missing_a_parameter():
    code = """
    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context):
        pass
    """
    (found,) = errors(code)
    assert "missing the parameter `metadata`" in found.message
    assert found.line == 5


def test_kwargs_accepts_every_parameter():
    code = """
    def context(**kwargs):
        return {}

    def list_objects(**kwargs):
        yield {}

    def read_bytes(context, **rest):
        yield b""
    """
    assert problems(code, "bytes") == []


def test_extra_required_parameter_is_an_error_but_a_default_is_fine():
    code = """
    def list_objects(context, metadata, page):
        yield {}

    def read_pandas_dataframe(context, metadata, *, limit=10):
        pass
    """
    (found,) = errors(code)
    assert "required parameter `page`" in found.message
    assert found.line == 2


def test_required_keyword_only_parameter_is_an_error():
    code = """
    def list_objects(context, metadata, *, token):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    (found,) = errors(code)
    assert "`token`" in found.message


def test_positional_only_parameters_are_an_error_once():
    code = """
    def list_objects(context, metadata, /):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    found = errors(code)
    assert len(found) == 2  # one per positional-only parameter, no "missing" duplicates
    assert all("positional-only" in p.message for p in found)


def test_context_parameters():
    code = """
    def context(creds):
        return {}

    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    messages = [p.message for p in errors(code)]
    assert any("missing the parameter `credentials`" in m for m in messages)
    assert any("required parameter `creds`" in m for m in messages)


def test_async_function_is_an_error():
    code = """
    async def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    (found,) = errors(code)
    assert "async" in found.message


def test_infer_schema_parameters():
    code = """
    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass

    def infer_schema(context, metadata, credentials, table, limit=3):
        pass
    """
    found = problems(code)
    by_severity = {p.severity: p for p in found}
    assert "infer_schema has a parameter `table`" in by_severity[ERROR].message
    assert "`limit`" in by_severity[WARNING].message
    assert all(p.line == 8 for p in found)


def test_infer_schema_may_ask_for_spark_with_any_interface():
    code = """
    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass

    def infer_schema(spark, context):
        pass
    """
    # The engine hands a Spark Connect session to infer_schema whatever the reader's interface.
    assert problems(code) == []


def test_names_bound_by_import_or_assignment_count_as_defined():
    code = """
    from library import list_objects
    import pandas as pd

    read_pandas_dataframe = lambda context, metadata: pd.DataFrame()
    """
    assert problems(code) == []


def test_star_import_downgrades_missing_functions_to_warnings():
    found = problems("from library import *\n")
    assert found
    assert all(p.severity == WARNING for p in found)


def test_definitions_inside_top_level_if_are_found():
    code = """
    import sys
    if sys.version_info >= (3, 0):
        def list_objects(context, metadata):
            yield {}
    else:
        def list_objects(context, metadata):
            yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    assert errors(code) == []


def test_nested_functions_do_not_count():
    code = """
    def helper():
        def list_objects(context, metadata):
            yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    assert any("list_objects" in p.message for p in errors(code))


def test_redefinition_warns():
    code = VALID_PANDAS + "\ndef list_objects(context, metadata):\n    yield {}\n"
    found = problems(code)
    assert [p.severity for p in found] == [WARNING]
    assert "defined again" in found[0].message


def test_decorated_functions_are_not_signature_checked():
    code = """
    import functools

    def wrap(f):
        @functools.wraps(f)
        def inner(**kwargs):
            return f(kwargs["context"], kwargs["metadata"])
        return inner

    @wrap
    def list_objects(ctx, md):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    assert errors(code) == []


def test_unknown_interface():
    (found,) = problems(VALID_PANDAS, "excel")
    assert "Unknown interface" in found.message


@pytest.mark.parametrize(
    "code",
    ["", "\x00", "(" * 500, "def f(:\n", "x" * 100_000, "if True:\n" + "    " * 300 + "pass\n"],
)
def test_never_raises(code):
    result = check_code(code, "pandas")
    assert isinstance(result, list)
    assert all(isinstance(p, Problem) for p in result)


def test_check_library_reports_syntax_only():
    assert check_library("def helper():\n    return 1\n") == []
    (found,) = check_library("def helper(:\n")
    assert found.message.startswith("Syntax error")
    assert found.line == 1


def test_warm_up_takes_no_parameters():
    assert problems("def warm_up():\n    pass\n" + VALID_PANDAS) == []
    (found,) = errors("def warm_up(credentials):\n    pass\n" + VALID_PANDAS)
    assert "warm_up has a required parameter `credentials`" in found.message
    assert "it calls warm_up()" in found.message
    assert found.line == 1
