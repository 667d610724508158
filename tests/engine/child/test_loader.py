"""Loading the library and the connector, and calling context()."""

from __future__ import annotations

import sys

from connector_engine.tabular import json_rows
from tests.engine.helpers import CONNECTOR, LIBRARY, run


def test_library_is_importable_and_its_public_names_are_globals():
    code = """
    import library
    from library import GREETING as g

    def list_objects(context, metadata):
        assert library.GREETING == g == GREETING
        assert "_private" not in globals()
        yield {"name": parse_credentials('{"a": "x"}')["a"], "fingerprint": "1"}

    def read_pandas_dataframe(context, metadata):
        return make_frame(metadata["name"])
    """
    outcome = run("read", code, library_code=LIBRARY)
    assert outcome.ok, outcome.error
    assert json_rows(outcome.table) == [["x", "hello"]]


def test_library_is_removed_from_sys_modules_afterwards():
    before = sys.modules.get("library")
    run("list", CONNECTOR, library_code=LIBRARY)
    assert sys.modules.get("library") is before


def test_context_absent_or_falsy_becomes_empty_dict():
    code = "def list_objects(context, metadata):\n    yield {}\n"
    reader = "def read_pandas_dataframe(context, metadata):\n    pass\n"
    assert run("context", code + reader).result == {"items": []}
    falsy = "def context(credentials):\n    return None\n" + code + reader
    assert run("context", falsy).result == {"items": []}


def test_context_receives_the_credentials_string_by_keyword():
    code = """
    def context(credentials):
        return {"len": len(credentials)}

    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    assert run("context", code, credentials="abcd").result["items"][0]["repr"] == "4"


def test_error_in_context_points_to_context():
    code = """
    import json

    def context(credentials):
        return json.loads(credentials)

    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    outcome = run("list", code, credentials="not json")
    assert outcome.error["type"] == "JSONDecodeError"
    assert outcome.error["function"] == "context"
    assert outcome.error["line"] == 5
