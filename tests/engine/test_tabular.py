"""Reader output to Arrow tables, readable type names and JSON rows."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from connector_engine.tabular import dataframe_to_table, json_rows, readable_type, table_columns
from connector_engine.user_code import ConnectorError


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


def test_json_float_rules():
    rows = json_rows(pa.table({"f": pa.array([-math.inf])}))
    assert rows == [["-Infinity"]]
