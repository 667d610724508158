"""Reader output to tables, JSON rows, bytes parsing and schema comparison."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as st

from connector_engine.child.errors import ConnectorError
from connector_engine.tabular import (
    canonical_type,
    dataframe_to_table,
    iter_chunks,
    json_rows,
    pandas_schema_fields,
    parse_bytes,
    read_chunks_table,
    readable_type,
    sampled_schema_fields,
    schema_differences,
    spark_schema_fields,
    table_columns,
)


def test_dataframe_to_table_drops_the_index_and_types_columns():
    frame = pd.DataFrame(
        {
            "i": [1, 2],
            "f": [1.5, np.nan],
            "s": ["a", None],
            "b": [True, False],
            "t": pd.to_datetime(["2024-01-02 03:04:05", None]),
            "d": [dt.date(2024, 1, 2), None],
        },
        index=["x", "y"],
    )
    table = dataframe_to_table(frame)
    assert table.column_names == ["i", "f", "s", "b", "t", "d"]
    types = {c["name"]: c["type"] for c in table_columns(table)}
    assert types["i"] == "int64"
    assert types["f"] == "float64"
    assert types["s"] == "string"
    assert types["b"] == "bool"
    assert types["t"].startswith("timestamp[")
    assert types["d"] == "date"


def test_mixed_object_column_becomes_strings():
    frame = pd.DataFrame({"m": [1, "two", 3.5, None], "ok": [1, 2, 3, 4]})
    table = dataframe_to_table(frame)
    assert table.schema.field("m").type == pa.string()
    assert table.column("m").to_pylist() == ["1", "two", "3.5", None]
    assert table.schema.field("ok").type == pa.int64()


def test_non_string_column_names_become_strings_and_duplicates_are_an_error():
    assert dataframe_to_table(pd.DataFrame({0: [1], 1: [2]})).column_names == ["0", "1"]
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ConnectorError, match="duplicate column names: a"):
        dataframe_to_table(frame)


def test_json_rows_are_json_safe():
    table = pa.table(
        {
            "f": pa.array([1.5, float("nan"), None, float("inf")]),
            "ts": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5), None, None, None], pa.timestamp("ns")
            ),
            "tz": pa.array(
                [dt.datetime(2024, 1, 2, tzinfo=dt.UTC), None, None, None],
                pa.timestamp("us", tz="UTC"),
            ),
            "d": pa.array([dt.date(2024, 1, 2), None, None, None]),
            "dec": pa.array([decimal.Decimal("1.10"), None, None, None]),
            "bin": pa.array([b"\x00\x01", None, None, None]),
            "lst": pa.array([[1, 2], None, [], None]),
            "st": pa.array([{"a": 1, "b": dt.date(2024, 1, 1)}, None, None, None]),
            "mp": pa.array([[("k", 1)], None, None, None], pa.map_(pa.string(), pa.int64())),
        }
    )
    rows = json_rows(table)
    json.dumps(rows, allow_nan=False)  # strictly valid JSON
    first = rows[0]
    assert first[0] == 1.5
    assert first[1] == "2024-01-02T03:04:05"
    assert first[2] == "2024-01-02T00:00:00+00:00"
    assert first[3] == "2024-01-02"
    assert first[4] == "1.10"
    assert base64.b64decode(first[5]) == b"\x00\x01"
    assert first[6] == [1, 2]
    assert first[7] == {"a": 1, "b": "2024-01-01"}
    assert first[8] == [["k", 1]]
    assert rows[1][:2] == [None, None]  # NaN and NaT are null
    assert rows[3][0] == "Infinity"


def test_json_rows_from_a_dataframe_with_nan_and_nat():
    frame = pd.DataFrame({"x": [np.nan, 2.0], "t": pd.to_datetime([None, "2024-05-06"])})
    assert json_rows(dataframe_to_table(frame)) == [[None, None], [2.0, "2024-05-06T00:00:00"]]


def test_json_rows_of_an_empty_table():
    assert json_rows(pa.table({})) == []
    assert json_rows(pa.table({"a": pa.array([], pa.int64())})) == []


def test_readable_types():
    assert readable_type(pa.large_string()) == "string"
    assert readable_type(pa.float32()) == "float32"
    assert readable_type(pa.timestamp("ns")) == "timestamp[ns]"
    assert readable_type(pa.timestamp("us", tz="UTC")) == "timestamp[us, tz=UTC]"
    assert readable_type(pa.date64()) == "date"
    assert readable_type(pa.decimal128(10, 2)) == "decimal(10,2)"
    assert readable_type(pa.list_(pa.int64())) == "list<int64>"
    assert readable_type(pa.struct([("a", pa.int64())])) == "struct<a: int64>"
    assert readable_type(pa.dictionary(pa.int32(), pa.string())) == "string"


# ---------------------------------------------------------------- bytes


def parse_chunks(chunks, parser, row_limit=None):
    table, _ = read_chunks_table(iter_chunks(chunks), parser, row_limit)
    return table


def test_csv_from_mixed_str_and_bytes_chunks():
    table = parse_chunks(["a,b\n1,", b"x\n2,y\n", bytearray(b"3,z\n")], "csv")
    assert table.column("a").to_pylist() == [1, 2, 3]
    assert table.column("b").to_pylist() == ["x", "y", "z"]


def test_jsonl_with_blank_lines():
    table = parse_chunks([b'{"a": 1, "b": "x"}\n\n', '{"a": 2}\n'], "jsonl")
    assert table.to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]


def test_jsonl_with_mixed_types_falls_back_to_strings():
    table = parse_chunks([b'{"a": 1}\n{"a": "x"}\n'], "jsonl")
    assert table.column("a").to_pylist() == ["1", "x"]


def test_jsonl_line_that_is_not_an_object():
    with pytest.raises(ConnectorError, match="Line 2 is a JSON list"):
        parse_chunks([b'{"a": 1}\n[1, 2]\n'], "jsonl")


def test_parquet_chunks():
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3]}), sink)
    data = sink.getvalue()
    table = parse_chunks([data[:10], data[10:]], "parquet")
    assert table.column("a").to_pylist() == [1, 2, 3]


def test_lines_parser_trims_line_endings_and_replaces_bad_utf8():
    table = parse_chunks(["one\r\ntw", b"o\n\xff\n"], "lines")
    assert table.column("line").to_pylist() == ["one", "two", "\ufffd"]


def test_chunk_of_another_type_names_its_type_and_index():
    with pytest.raises(ConnectorError, match="yielded a dict as chunk 2"):
        parse_chunks([b"a\n", "1\n", {"x": 1}], "csv")


def test_reader_returning_one_bytes_payload_is_one_chunk():
    assert parse_chunks(b"a\n1\n", "csv").num_rows == 1


def test_empty_csv_is_an_empty_table():
    assert parse_chunks([], "csv").num_rows == 0


def test_parse_errors_are_parse_errors():
    with pytest.raises(ConnectorError) as caught:
        parse_bytes(b"not parquet", "parquet")
    assert caught.value.type == "ParseError"
    with pytest.raises(ConnectorError, match="Unknown parser"):
        parse_bytes(b"", "xml")


def test_preview_stops_pulling_chunks_early():
    pulled = []

    def chunks():
        yield b"a\n"
        for index in range(100_000):
            pulled.append(index)
            yield f"{index}\n".encode()

    table, stopped = read_chunks_table(iter_chunks(chunks()), "csv", 10)
    assert stopped
    assert table.num_rows > 10
    assert len(pulled) < 100


def test_preview_of_csv_with_quoted_newlines_retries():
    rows = "".join(f'{i},"multi\nline\nvalue"\n' for i in range(50))
    chunks = ["a,b\n", *rows.splitlines(keepends=True)]  # cuts fall inside quoted values
    table, stopped = read_chunks_table(iter_chunks(chunks), "csv", 5)
    assert stopped
    assert table.num_rows > 5
    assert table.column("a").to_pylist()[:3] == [0, 1, 2]
    assert table.column("b")[0].as_py() == "multi\nline\nvalue"


# ---------------------------------------------------------------- schemas

DECLARED = st.StructType(
    [
        st.StructField("id", st.LongType(), False),
        st.StructField("name", st.StringType(), True),
        st.StructField("score", st.DoubleType(), True),
        st.StructField("at", st.TimestampType(), True),
        st.StructField("tags", st.ArrayType(st.StringType()), True),
        st.StructField("only_declared", st.IntegerType(), True),
    ]
)


def test_struct_type_conversion_without_spark():
    fields = spark_schema_fields(DECLARED)
    assert fields[0] == {"name": "id", "type": "bigint", "nullable": False}
    assert fields[4] == {"name": "tags", "type": "array<string>", "nullable": True}


def test_equivalent_spark_and_arrow_type_names():
    pairs = [
        ("bigint", "int64"),
        ("string", "string"),
        ("double", "float64"),
        ("timestamp", "timestamp[us]"),
        ("timestamp", "timestamp[ns, tz=UTC]"),
        ("int", "int32"),
        ("boolean", "bool"),
        ("array<string>", "list<string>"),
        ("map<string,int>", "map<string, int32>"),
        ("struct<a:bigint,b:decimal(10,2)>", "struct<a: int64, b: decimal(10,2)>"),
        ("varchar(5)", "string"),
    ]
    for spark_name, arrow_name in pairs:
        assert canonical_type(spark_name) == canonical_type(arrow_name), (spark_name, arrow_name)
    assert canonical_type("int") != canonical_type("int64")


def test_schema_differences():
    frame = pd.DataFrame(
        {
            "id": [1, None],
            "name": ["a", "b"],
            "score": [1.0, 2.0],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "tags": [["x"], []],
            "extra": [1, 2],
        }
    )
    sampled = sampled_schema_fields(dataframe_to_table(frame))
    differences = schema_differences(spark_schema_fields(DECLARED), sampled)
    by_column = {d["column"]: d["kind"] for d in differences}
    assert by_column == {
        "id": "type_differs",  # a None in an int column makes pandas use float64
        "only_declared": "missing_in_data",
        "extra": "missing_in_declared",
    }
    message = next(d for d in differences if d["column"] == "id")["message"]
    assert "bigint" in message and "float64" in message


def test_nullability_difference_only_when_declared_not_nullable_and_nulls_seen():
    declared = [{"name": "a", "type": "bigint", "nullable": False}]
    with_nulls = [{"name": "a", "type": "int64", "nullable": True}]
    without_nulls = [{"name": "a", "type": "int64", "nullable": False}]
    assert [d["kind"] for d in schema_differences(declared, with_nulls)] == ["nullability_differs"]
    assert schema_differences(declared, without_nulls) == []
    relaxed = [{"name": "a", "type": "bigint", "nullable": True}]
    assert schema_differences(relaxed, without_nulls) == []


def test_all_null_sampled_column_matches_any_type():
    declared = [{"name": "a", "type": "string", "nullable": True}]
    assert schema_differences(declared, [{"name": "a", "type": "null", "nullable": True}]) == []


def test_pandas_schema_fields():
    fields = pandas_schema_fields(pd.DataFrame({"a": [1], "b": ["x"]}))
    assert [(f["name"], f["type"]) for f in fields] == [("a", "int64"), ("b", "string")]


def test_json_float_rules():
    rows = json_rows(pa.table({"f": pa.array([-math.inf])}))
    assert rows == [["-Infinity"]]


def test_it_profiles_columns():
    import pyarrow as pa

    from connector_engine.tabular import column_profile

    table = pa.table(
        {
            "n": [3, None, 1, 3],
            "s": ["b", "a", None, None],
            "d": pa.array([None, None, None, None], pa.timestamp("ns")),
            "l": [[1], [2], None, [1]],
        }
    )
    profile = {entry["name"]: entry for entry in column_profile(table)}
    assert profile["n"] == {"name": "n", "null_pct": 25.0, "distinct": 2, "min": 1, "max": 3}
    assert profile["s"] == {"name": "s", "null_pct": 50.0, "distinct": 2, "min": "a", "max": "b"}
    assert profile["d"]["null_pct"] == 100.0 and profile["d"]["min"] is None
    assert profile["l"]["min"] is None and profile["l"]["max"] is None
