"""Previews of spark connectors through a real local Spark Connect server."""

from __future__ import annotations

import pytest

from connections.models import Connector
from runs.models import RunStatus
from runs.services import preview_run
from tests.factories import make_connector

pytestmark = [pytest.mark.django_db, pytest.mark.spark, pytest.mark.usefixtures("spark_server")]

RAISES = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    frame = spark.createDataFrame([(1,)], schema="n long")
    raise ValueError("no such table: " + metadata["name"])
"""

BAD_COLUMN = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(3).select("nope")
"""

NOT_A_FRAME = BAD_COLUMN.replace('spark.range(3).select("nope")', "[1, 2, 3]")

PANDAS_WITH_SPARK_SCHEMA = """\
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": [1, 2]})


def infer_schema(spark):
    return spark.createDataFrame([], schema="n long")
"""


def test_it_previews_the_spark_example(examples):
    connector = Connector.objects.get(slug="languages-spark")
    listing = preview_run(connector=connector, action="list")
    assert listing.status == RunStatus.SUCCEEDED, listing.error_message
    assert listing.result["leaf_count"] == 6
    read = preview_run(connector=connector, action="read", object={"name": "1990s"})
    assert read.status == RunStatus.SUCCEEDED, read.error_message
    assert [row[0] for row in read.result["rows"]] == [
        "Haskell",
        "Python",
        "Java",
        "JavaScript",
        "Ruby",
    ]
    assert read.result["row_count"] == 5 and read.result["truncated"] is False
    assert [c["name"] for c in read.result["columns"]] == [
        "language",
        "first_appeared",
        "designed_by",
        "paradigm",
    ]
    assert read.result["profile"]
    schema = preview_run(connector=connector, action="schema")
    assert schema.status == RunStatus.SUCCEEDED, schema.error_message
    assert [f["name"] for f in schema.result["sampled"]][:2] == ["language", "first_appeared"]


def test_it_truncates_to_the_row_limit_and_counts_all_rows(examples):
    connector = Connector.objects.get(slug="languages-spark")
    read = preview_run(connector=connector, action="read", object={"name": "1990s"}, row_limit=2)
    assert read.status == RunStatus.SUCCEEDED, read.error_message
    assert len(read.result["rows"]) == 2
    assert read.result["row_count"] == 5 and read.result["truncated"] is True


def test_it_shows_the_users_line_when_the_reader_raises(connection):
    connector = make_connector(connection=connection, name="Raises", code=RAISES, interface="spark")
    run = preview_run(connector=connector, action="read")
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ValueError" and "no such table: one" in run.error_message
    assert run.error_function == "read_spark_dataframe" and run.error_line == 7


def test_it_reports_spark_errors_at_the_reader_without_the_jvm_trace(connection):
    code = BAD_COLUMN
    connector = make_connector(connection=connection, name="Bad", code=code, interface="spark")
    run = preview_run(connector=connector, action="read")
    assert run.status == RunStatus.FAILED
    assert run.error_type == "AnalysisException"
    assert "`nope`" in run.error_message and "JVM stacktrace" not in run.error_message
    assert run.error_function == "read_spark_dataframe" and run.error_line == 5


def test_it_requires_a_spark_dataframe(connection):
    connector = make_connector(
        connection=connection, name="List", code=NOT_A_FRAME, interface="spark"
    )
    run = preview_run(connector=connector, action="read")
    assert run.error_type == "ContractError"
    assert "must return a pyspark DataFrame" in run.error_message


def test_it_gives_spark_to_infer_schema_of_a_pandas_connector(connection):
    connector = make_connector(connection=connection, name="P", code=PANDAS_WITH_SPARK_SCHEMA)
    run = preview_run(connector=connector, action="schema")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["declared"] == [{"name": "n", "type": "bigint", "nullable": True}]
    assert run.result["differences"] == []
