"""Schema fields and the comparison of declared and sampled schemas (profiles: test_profile)."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import types as st

from connector_engine.schemas import (
    canonical_type,
    pandas_schema_fields,
    sampled_schema_fields,
    schema_differences,
    spark_schema_fields,
)
from connector_engine.tabular import dataframe_to_table

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
