"""The read action in-process: leaves, row limits, the three interfaces' readers."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector_engine.protocol import Limits
from connector_engine.tabular import json_rows
from tests.engine.helpers import CONNECTOR, LIBRARY, run


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
