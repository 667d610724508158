"""execute(): every action in-process, with real connector code strings."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector_engine.child.actions import execute
from connector_engine.protocol import Limits, SandboxRequest
from connector_engine.tabular import json_rows
from tests.runtime.helpers import run

LIBRARY = """
import json

GREETING = "hello"

def parse_credentials(credentials):
    return json.loads(credentials or "{}")

def make_frame(name):
    import pandas as pd
    return pd.DataFrame({"name": [name], "greeting": [GREETING]})

def _private():
    return "hidden"
"""

CONNECTOR = """
import library

def context(credentials):
    return parse_credentials(credentials)

def list_objects(context, metadata):
    if not metadata:
        yield {"name": "dir", "is_prefix": True}
        yield {"name": "top.csv", "fingerprint": "v1", "rows": 3}
    else:
        yield {"name": "dir/inner.csv", "fingerprint": "v2", "rows": 250}

def read_pandas_dataframe(context, metadata):
    frame = library.make_frame(metadata["name"])
    return pd.concat([frame] * metadata["rows"], ignore_index=True)

import pandas as pd
"""


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


def test_context_action_lists_keys():
    outcome = run(
        "context",
        CONNECTOR,
        library_code=LIBRARY,
        credentials='{"token": "abc", "n": 3, "nested": {"x": [1, 2]}}',
    )
    assert outcome.ok
    assert outcome.result["items"] == [
        {"key": "token", "type": "str", "repr": "'abc'"},
        {"key": "n", "type": "int", "repr": "3"},
        {"key": "nested", "type": "dict", "repr": "{'x': [1, 2]}"},
    ]


def test_context_absent_or_falsy_becomes_empty_dict():
    code = "def list_objects(context, metadata):\n    yield {}\n"
    reader = "def read_pandas_dataframe(context, metadata):\n    pass\n"
    assert run("context", code + reader).result == {"items": []}
    falsy = "def context(credentials):\n    return None\n" + code + reader
    assert run("context", falsy).result == {"items": []}


def test_context_of_a_non_mapping_and_a_broken_repr():
    code = """
    class Client:
        def __repr__(self):
            raise RuntimeError("no repr")

    def context(credentials):
        return Client()

    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    (item,) = run("context", code).result["items"]
    assert item["key"] is None
    assert item["type"] == "Client"
    assert item["repr"] == "<repr failed: RuntimeError: no repr>"


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


def test_read_first_leaf_breadth_first_with_row_limit():
    outcome = run("read", CONNECTOR, library_code=LIBRARY, limits=Limits(row_limit=2))
    assert outcome.ok, outcome.error
    result = outcome.result
    assert result["columns"] == [
        {"name": "name", "type": "string"},
        {"name": "greeting", "type": "string"},
    ]
    assert result["row_count"] == 3
    assert result["truncated"] is True
    assert result["object"]["name"] == "top.csv"
    assert "rows" not in result  # the sandbox fills rows after masking
    assert outcome.table.num_rows == 2


def test_read_a_given_leaf_full_table():
    leaf = {"name": "dir/inner.csv", "fingerprint": "v2", "rows": 250}
    outcome = run("read", CONNECTOR, library_code=LIBRARY, object=leaf, full_table=True)
    assert outcome.ok
    assert outcome.table.num_rows == 250
    assert outcome.result["truncated"] is False


def test_read_rejects_a_prefix():
    outcome = run("read", CONNECTOR, library_code=LIBRARY, object={"name": "d", "is_prefix": True})
    assert outcome.error["type"] == "InvalidRequest"


def test_read_with_no_leaves():
    code = """
    def list_objects(context, metadata):
        yield {"name": "bad"}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    outcome = run("read", code)
    assert outcome.error["type"] == "NoObjects"
    assert "missing key 'fingerprint'" in outcome.error["message"]


def test_read_lists_lazily():
    code = """
    calls = []

    def list_objects(context, metadata):
        for index in range(10 ** 9):
            calls.append(index)
            if index > 5:
                raise RuntimeError("listed too far")
            yield {"name": f"f{index}", "fingerprint": "1"}

    def read_pandas_dataframe(context, metadata):
        import pandas as pd
        return pd.DataFrame({"n": [len(calls)]})
    """
    outcome = run("read", code)
    assert outcome.ok, outcome.error
    assert json_rows(outcome.table) == [[1]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return None", "read_pandas_dataframe returned None; it must return a pandas DataFrame"),
        ("return [1, 2]", "read_pandas_dataframe returned a list"),
        ("return pd.Series([1])", "use series.to_frame()"),
    ],
)
def test_reader_returning_the_wrong_type(body, message):
    code = f"""
    import pandas as pd

    def list_objects(context, metadata):
        yield {{"name": "a", "fingerprint": "1"}}

    def read_pandas_dataframe(context, metadata):
        {body}
    """
    outcome = run("read", code)
    assert not outcome.ok
    assert outcome.error["type"] == "ContractError"
    assert message in outcome.error["message"]
    assert outcome.error["function"] == "read_pandas_dataframe"
    assert outcome.error["line"] == 7


def parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), sink)
    return sink.getvalue()


BYTES_CONNECTOR = """
def list_objects(context, metadata):
    yield {"name": "data", "fingerprint": "1"}

def read_bytes(context, metadata):
    yield from CHUNKS
"""


@pytest.mark.parametrize(
    ("parser", "chunks", "rows"),
    [
        ("csv", ["a,b\n", b"1,x\n2,", "y\n"], [[1, "x"], [2, "y"]]),
        ("jsonl", ['{"a": 1, "b": "x"}\n', b'{"a": 2, "b": "y"}\n'], [[1, "x"], [2, "y"]]),
        ("lines", [b"first\nsec", "ond\n"], [["first"], ["second"]]),
        ("parquet", [parquet_bytes()], [[1, "x"], [2, "y"]]),
    ],
)
def test_bytes_parsers(parser, chunks, rows):
    code = f"CHUNKS = {chunks!r}\n" + BYTES_CONNECTOR
    outcome = run("read", code, interface="bytes", parser=parser)
    assert outcome.ok, outcome.error
    assert json_rows(outcome.table) == rows
    assert outcome.result["row_count"] == len(rows)


def test_bytes_bad_chunk_names_type_and_index_and_reader_line():
    code = "CHUNKS = [b'a\\n', 'b\\n', 3.5]\n" + BYTES_CONNECTOR
    outcome = run("read", code, interface="bytes", parser="lines")
    assert outcome.error["type"] == "ContractError"
    assert "a float as chunk 2" in outcome.error["message"]
    assert outcome.error["function"] == "read_bytes"
    assert outcome.error["line"] == 6


def test_bytes_without_parser():
    outcome = run("read", "CHUNKS = []\n" + BYTES_CONNECTOR, interface="bytes")
    assert outcome.error["type"] == "ConfigurationError"


def test_bytes_reader_exception_midway_points_into_the_reader():
    code = """
    def list_objects(context, metadata):
        yield {"name": "data", "fingerprint": "1"}

    def read_bytes(context, metadata):
        yield b"a\\n1\\n"
        raise IOError("connection reset")
    """
    outcome = run("read", code, interface="bytes", parser="csv")
    assert outcome.error["type"] == "OSError"
    assert outcome.error["line"] == 7


def test_bytes_preview_closes_the_generator_early():
    code = """
    import library

    def list_objects(context, metadata):
        yield {"name": "data", "fingerprint": "1"}

    def read_bytes(context, metadata):
        try:
            for index in range(10 ** 7):
                library.PULLED.append(index)
                yield f"line {index}\\n"
        finally:
            library.CLOSED.append(True)
    """
    library = "PULLED = []\nCLOSED = []\n"
    outcome = run("read", code, library_code=library, interface="bytes", parser="lines")
    assert outcome.ok, outcome.error
    assert outcome.result["truncated"] is True
    assert outcome.result["row_count_exact"] is False
    assert outcome.table.num_rows == 100


def test_spark_interface_needs_a_spark_remote():
    code = """
    def list_objects(context, metadata):
        yield {"name": "a", "fingerprint": "1"}

    def read_spark_dataframe(spark, context, metadata):
        return spark.range(3)
    """
    outcome = run("read", code, interface="spark")
    assert outcome.error["type"] == "NotAvailable"
    assert "no Spark Connect server was given" in outcome.error["message"]
    assert outcome.error["function"] == "read_spark_dataframe"
    assert run("list", code, interface="spark").ok


def test_contract_error_stops_before_running():
    code = """
    print("should not run")

    def read_pandas_dataframe(context, metadata):
        pass
    """
    outcome = run("list", code)
    assert outcome.error["type"] == "ContractError"
    assert "list_objects" in outcome.error["message"]
    assert outcome.error["line"] == 1
    assert outcome.error["problems"][0]["severity"] == "error"


def test_unknown_action_and_interface_are_invalid_requests():
    assert run("explode", CONNECTOR).error["type"] == "InvalidRequest"
    assert run("list", CONNECTOR, interface="excel").error["type"] == "InvalidRequest"


def test_execute_never_raises_even_on_a_broken_request():
    outcome = execute(SandboxRequest(action="list", code=None))  # type: ignore[arg-type]
    assert not outcome.ok
    assert outcome.error["type"]


def test_keyboard_interrupt_from_user_code_is_an_error():
    code = """
    def list_objects(context, metadata):
        raise KeyboardInterrupt

    def read_pandas_dataframe(context, metadata):
        pass
    """
    outcome = run("list", code)
    assert outcome.error["type"] == "KeyboardInterrupt"


# ---------------------------------------------------------------- schema

SCHEMA_CONNECTOR = """
import pandas as pd
from pyspark.sql.types import LongType, StringType, StructField, StructType

def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"id": [1, 2], "name": ["x", None], "extra": [1.5, 2.5]})

def infer_schema(context, metadata, credentials):
    assert metadata["name"] == "a" and credentials == "c"
    return StructType([
        StructField("id", LongType(), False),
        StructField("name", StringType(), False),
        StructField("missing", StringType(), True),
    ])
"""


def test_schema_declared_versus_sampled():
    outcome = run("schema", SCHEMA_CONNECTOR, credentials="c")
    assert outcome.ok, outcome.error
    result = outcome.result
    assert result["declared"][0] == {"name": "id", "type": "bigint", "nullable": False}
    assert {f["name"]: f["type"] for f in result["sampled"]} == {
        "id": "int64",
        "name": "string",
        "extra": "float64",
    }
    kinds = {d["column"]: d["kind"] for d in result["differences"]}
    assert kinds == {
        "name": "nullability_differs",
        "missing": "missing_in_data",
        "extra": "missing_in_declared",
    }
    json.dumps(result)


def test_schema_without_infer_schema_is_sampled_only():
    code = SCHEMA_CONNECTOR.split("def infer_schema")[0]
    result = run("schema", code).result
    assert result["declared"] is None
    assert result["differences"] == []
    assert len(result["sampled"]) == 3


def test_schema_from_a_returned_dataframe():
    code = (
        SCHEMA_CONNECTOR.split("def infer_schema")[0]
        + "def infer_schema(**kwargs):\n    return pd.DataFrame({'id': [1]})\n"
    )
    result = run("schema", code).result
    assert result["declared"] == [{"name": "id", "type": "int64", "nullable": True}]
    assert [d["column"] for d in result["differences"]] == ["name", "extra"]


def test_schema_asking_for_spark_is_not_available():
    code = (
        SCHEMA_CONNECTOR.split("def infer_schema")[0]
        + "def infer_schema(spark, context):\n    return spark.table('x').schema\n"
    )
    outcome = run("schema", code)
    assert outcome.error["type"] == "NotAvailable"
    assert "spark" in outcome.error["message"]
    assert outcome.error["function"] == "infer_schema"


def test_schema_returning_something_else():
    code = (
        SCHEMA_CONNECTOR.split("def infer_schema")[0]
        + "def infer_schema(context):\n    return 'id bigint'\n"
    )
    outcome = run("schema", code)
    assert outcome.error["type"] == "ContractError"
    assert "infer_schema returned a str" in outcome.error["message"]


def test_schema_sampling_failure_keeps_the_declared_schema():
    code = SCHEMA_CONNECTOR.replace(
        'return pd.DataFrame({"id"', 'raise ValueError("down")\n    return pd.DataFrame({"id"'
    )
    outcome = run("schema", code, credentials="c")
    assert not outcome.ok
    assert outcome.error["type"] == "ValueError"
    assert outcome.result["declared"][0]["name"] == "id"
    assert outcome.result["sampled"] is None


# ---------------------------------------------------------------- corpus (in-process)

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MINE = sorted(
    path
    for prefix in ("metadata_", "contract_", "reader_")
    for path in CORPUS.glob(f"{prefix}*.py")
)
HEADER = re.compile(r"^#\s*expect-([a-z-]+):\s?(.*)$")


def corpus_header(path: Path) -> dict[str, str]:
    header = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = HEADER.match(line)
        if match:
            header[match.group(1)] = match.group(2).rstrip()
    return header


@pytest.mark.parametrize("path", MINE, ids=lambda path: path.stem)
def test_corpus_in_process(path: Path):
    header = corpus_header(path)
    outcome = execute(
        SandboxRequest(
            action=header.get("action", "read"),
            code=path.read_text(),
            interface=header.get("interface", "pandas"),
            parser=header.get("parser"),
        )
    )
    summary = json.dumps({"ok": outcome.ok, "result": outcome.result, "error": outcome.error})
    if "error" in header:
        assert not outcome.ok, summary
        assert outcome.error["type"] == header["error"], summary
        assert header.get("message", "") in outcome.error["message"], summary
    else:
        assert outcome.ok, summary
    if "problem" in header:
        assert header["problem"] in json.dumps(outcome.result), summary
