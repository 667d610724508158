"""Previews of spark connectors through a real local Spark Connect server."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from connections.models import Connector
from connector_engine.spark.server import LocalSparkServer
from connectors_site import engine_config
from runs.models import RunStatus
from runs.services import preview_run
from tests.factories import make_connector
from tests.processes import processes_with_argument, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.spark]

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


def test_it_previews_the_spark_example(spark_server, examples):
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
    # Spark's own type names, not pandas' or Arrow's (int64).
    assert read.result["columns"][1]["type"] == "bigint"
    assert read.result["profile"]
    schema = preview_run(connector=connector, action="schema")
    assert schema.status == RunStatus.SUCCEEDED, schema.error_message
    assert [f["name"] for f in schema.result["sampled"]][:2] == ["language", "first_appeared"]


def test_it_truncates_to_the_row_limit_and_counts_all_rows(spark_server, examples):
    connector = Connector.objects.get(slug="languages-spark")
    read = preview_run(connector=connector, action="read", object={"name": "1990s"}, row_limit=2)
    assert read.status == RunStatus.SUCCEEDED, read.error_message
    assert len(read.result["rows"]) == 2
    assert read.result["row_count"] == 5 and read.result["truncated"] is True
    # The profile covers the partition (up to the budget, fetched in the same Arrow fetch).
    assert read.result["profile_scope"]["note"] == "Column profile of all 5 rows of the partition"
    profile = {column["name"]: column for column in read.result["profile"]}
    assert profile["first_appeared"]["type"] == "bigint"
    assert sum(profile["first_appeared"]["histogram"]["counts"]) == 5


def test_it_shows_the_users_line_when_the_reader_raises(spark_server, connection):
    connector = make_connector(connection=connection, name="Raises", code=RAISES, interface="spark")
    run = preview_run(connector=connector, action="read")
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ValueError" and "no such table: one" in run.error_message
    assert run.error_function == "read_spark_dataframe" and run.error_line == 7


def test_it_reports_spark_errors_at_the_reader_without_the_jvm_trace(spark_server, connection):
    code = BAD_COLUMN
    connector = make_connector(connection=connection, name="Bad", code=code, interface="spark")
    run = preview_run(connector=connector, action="read")
    assert run.status == RunStatus.FAILED
    assert run.error_type == "AnalysisException"
    assert "`nope`" in run.error_message and "JVM stacktrace" not in run.error_message
    assert run.error_function == "read_spark_dataframe" and run.error_line == 5


def test_it_requires_a_spark_dataframe(spark_server, connection):
    connector = make_connector(
        connection=connection, name="List", code=NOT_A_FRAME, interface="spark"
    )
    run = preview_run(connector=connector, action="read")
    assert run.error_type == "ContractError"
    assert "must return a pyspark DataFrame" in run.error_message


def test_it_gives_spark_to_infer_schema_of_a_pandas_connector(spark_server, connection):
    connector = make_connector(connection=connection, name="P", code=PANDAS_WITH_SPARK_SCHEMA)
    run = preview_run(connector=connector, action="schema")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["declared"] == [{"name": "n", "type": "bigint", "nullable": True}]
    assert run.result["differences"] == []


WAREHOUSE = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    print("warehouse", spark.conf.get("spark.sql.warehouse.dir"))
    return spark.range(2)
"""

LONG_QUERY = """\
import subprocess


def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    subprocess.Popen(["sleep", "MARKER"])
    spark.range(10**12).selectExpr("sum(id % 7)").collect()  # ANSI: sum(id) overflows
    return spark.range(1)
"""


def jvm_cpu_s(pid: int) -> float:
    """Return the CPU time (user + system) a process used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def jvm_busy(pid: int, window_s: float = 1.0) -> bool:
    """Say whether the JVM used more than half a core over the next `window_s` seconds."""
    before = jvm_cpu_s(pid)
    time.sleep(window_s)
    return jvm_cpu_s(pid) - before > 0.5 * window_s


def test_it_uses_a_configured_remote_and_never_shows_its_token(tmp_path, settings, connection):
    """No spark_server fixture: a configured remote must not start the local server."""
    remote = LocalSparkServer(tmp_path / "remote", warm_up=False)
    local = engine_config.spark_server()
    local_was_up, starts = local.is_up(), local.starts
    try:
        settings.SPARK_REMOTE = remote.remote()
        assert engine_config.spark_status()["kind"] == "remote"
        assert remote.token not in str(engine_config.spark_status())
        connector = make_connector(
            connection=connection, name="Remote", code=WAREHOUSE, interface="spark"
        )
        read = preview_run(connector=connector, action="read")
        assert read.status == RunStatus.SUCCEEDED, (read.error_type, read.error_message)
        assert f"warehouse file:{tmp_path / 'remote' / 'warehouse'}" in read.logs
        failed = preview_run(connector=connector, action="read", code=BAD_COLUMN)
        assert failed.error_type == "AnalysisException"
        for run in (read, failed):
            recorded = [run.logs, run.result, run.parameters, run.error_message]
            assert remote.token not in str([*recorded, run.error_traceback])
        assert local.starts == starts and local.is_up() == local_was_up
    finally:
        remote.stop()


def test_it_interrupts_the_query_of_a_preview_that_timed_out(spark_server, connection):
    marker = f"{1000 + uuid.uuid4().int % 100000}.25"
    code = LONG_QUERY.replace("MARKER", marker)
    connector = make_connector(connection=connection, name="Long", code=code, interface="spark")

    run = preview_run(connector=connector, action="read", timeout_s=8)

    assert run.status == RunStatus.TIMED_OUT, (run.error_type, run.error_message)
    assert wait_for(lambda: not processes_with_argument(marker), timeout=5), "sandbox survived"
    # The query the killed client left running is interrupted on the server.
    jvm = spark_server.jvm_pid()
    assert wait_for(lambda: not jvm_busy(jvm), timeout=30, interval=0)
    next_run = preview_run(connector=connector, action="read", code=WAREHOUSE)
    assert next_run.status == RunStatus.SUCCEEDED, next_run.error_message
    assert spark_server.jvm_pid() == jvm  # the same server served it
