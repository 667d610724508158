"""The schema action in-process: infer_schema's declared schema against a sample."""

from __future__ import annotations

import json

from tests.engine.helpers import run

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
