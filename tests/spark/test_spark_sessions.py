"""Pooled Spark Connect sessions: stable ids leased per request, reset, rotated when closed;
never shared by two connections, bounded for the whole installation, ended when idle."""

from __future__ import annotations

import contextlib
import re
import threading
import time
import warnings
from pathlib import Path

import pytest

from connector_engine.protocol import SandboxRequest
from connector_engine.spark.processes import cmdline, process_tree
from connector_engine.spark.server import LocalSparkServer
from connector_engine.spark.sessions import url_with_session
from connectors_site import engine_config
from runs import services
from runs.models import RunStatus
from runs.services import preview_run
from tests.factories import make_connection, make_connector
from tests.processes import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.spark]

UDF_READER = """\
import time


def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    print("session", spark.session_id)
    time.sleep(PAUSE)

    def double(frames):
        for frame in frames:
            yield frame * 2

    return spark.range(3).mapInPandas(double, "id long")
"""

LEAVES_STATE = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    seen = {
        "views": sorted(t.name for t in spark.catalog.listTables()),
        "partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "functions": [r.function for r in spark.sql("SHOW USER FUNCTIONS").collect()],
    }
    print("seen", seen, "session", spark.session_id)
    spark.range(3).createOrReplaceTempView("left_behind")
    spark.range(3).createOrReplaceGlobalTempView("left_behind_globally")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    spark.sql("CREATE TEMPORARY FUNCTION left_fn AS 'org.apache.hadoop.hive.ql.udf.UDFPI'")
    return spark.range(1)
"""


def python_daemons(server: LocalSparkServer) -> list[int]:
    """The server's Python worker daemons (SPARK-54055 leaves one per session)."""
    daemons = []
    for pid in process_tree(server.pid):
        if "pyspark.daemon" in cmdline(pid):
            parent = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
            if "pyspark.daemon" not in cmdline(parent):  # not a worker the daemon forked
                daemons.append(pid)
    return daemons


def session_ids(logs: str) -> list[str]:
    return re.findall(r"session ([0-9a-f-]{36})", logs)


def udf_request(pause_s: float = 0.0, spark_remote: str | None = None) -> SandboxRequest:
    return SandboxRequest(
        action="read",
        code=UDF_READER.replace("PAUSE", repr(pause_s)),
        interface="spark",
        spark_remote=spark_remote,
    )


def test_it_keeps_the_python_workers_bounded_over_many_previews(spark_server, connection):
    start = len(python_daemons(spark_server))
    url = spark_server.remote()
    for _ in range(2):  # a session per request, released at the end: each leaves a daemon
        result = services.run_in_sandbox(udf_request(spark_remote=url))
        assert result.ok, result.error
    leaked = len(python_daemons(spark_server)) - start
    assert leaked == 2

    code = UDF_READER.replace("PAUSE", "0")
    connector = make_connector(connection=connection, name="Udf", code=code, interface="spark")
    seen = set()
    for _ in range(20):
        run = preview_run(connector=connector, action="read")
        assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
        assert run.result["rows"] == [[0], [2], [4]]
        seen.update(session_ids(run.logs))
    assert len(seen) == 1  # one after the other: always the first free slot
    assert len(python_daemons(spark_server)) - start - leaked <= 1


def test_it_leases_different_sessions_to_concurrent_previews(spark_server):
    results = [None, None]

    def preview(index: int) -> None:
        results[index] = services.run_in_sandbox(udf_request(pause_s=3.0))

    threads = [threading.Thread(target=preview, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(result is not None and result.ok for result in results), results
    first, second = (session_ids(result.logs) for result in results)
    assert len(first) == len(second) == 1 and first != second


def test_it_resets_what_an_earlier_run_left_in_a_pooled_session(spark_server, connection):
    connector = make_connector(
        connection=connection, name="Leaves", code=LEAVES_STATE, interface="spark"
    )
    runs = [preview_run(connector=connector, action="read") for _ in range(2)]
    for run in runs:
        assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    assert session_ids(runs[0].logs) == session_ids(runs[1].logs)  # the same session, reused
    for run in runs:
        assert "seen {'views': [], 'partitions': '200', 'functions': []}" in run.logs


def test_it_rotates_a_session_the_server_closed(spark_server, connection, settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas-version notices on import
        from pyspark.sql.connect.session import SparkSession

    url = spark_server.remote()
    tenant = f"connection-{connection.pk}"
    closed = set()
    with contextlib.ExitStack() as stack:  # every slot's id, closed on the server
        leases = [
            stack.enter_context(engine_config.spark_session_lease(tenant=tenant)) for _ in range(4)
        ]
        for lease in leases:
            session = SparkSession.builder.remote(url_with_session(url, lease.session_id)).create()
            session.range(1).collect()
            session.stop()  # releases it: the server answers SESSION_CLOSED from now on
            closed.add(lease.session_id)
    code = UDF_READER.replace("PAUSE", "0")
    connector = make_connector(connection=connection, name="Again", code=code, interface="spark")

    run = preview_run(connector=connector, action="read")

    assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    (used,) = session_ids(run.logs)
    assert used not in closed
    slots = {slot.session_id for slot in engine_config.spark_sessions().slots()}
    assert used in slots and len(slots & closed) == 3  # only the leased slot was rotated


def test_it_reuses_the_pooled_sessions_after_the_server_was_restarted(spark_server, connection):
    code = UDF_READER.replace("PAUSE", "0")
    connector = make_connector(connection=connection, name="Restart", code=code, interface="spark")
    before = preview_run(connector=connector, action="read")
    assert before.status == RunStatus.SUCCEEDED, (before.error_type, before.error_message)
    starts = spark_server.starts
    spark_server.stop()

    after = preview_run(connector=connector, action="read")

    assert after.status == RunStatus.SUCCEEDED, (after.error_type, after.error_message)
    assert spark_server.starts == starts + 1
    assert session_ids(after.logs) == session_ids(before.logs)  # a new server, the same id


def test_one_connections_sessions_are_never_leased_to_another(spark_server, owner, connection):
    """A module one connection's UDF plants in its session's Python workers' working directory
    never reaches another connection's code: they never share a session."""
    code = UDF_READER.replace("PAUSE", "0")
    other = make_connection(owner=owner, name="Another tenant")
    mine = make_connector(connection=connection, name="Mine", code=code, interface="spark")
    theirs = make_connector(connection=other, name="Theirs", code=code, interface="spark")

    def used(connector) -> set[str]:
        runs = [preview_run(connector=connector, action="read") for _ in range(3)]
        return {found for run in runs for found in session_ids(run.logs)}

    mine_ids, theirs_ids = used(mine), used(theirs)

    assert mine_ids and theirs_ids
    assert not mine_ids & theirs_ids


def session_closed(url: str) -> bool:
    """Say whether the server answers that the session in `url` was closed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql.connect.session import SparkSession

    session = SparkSession.builder.remote(url).create()
    try:
        session.range(1).collect()
    except Exception as exc:
        return "SESSION_CLOSED" in str(exc)
    finally:
        session.client.close()
    return False


def test_the_installation_keeps_at_most_spark_max_sessions(spark_server, owner, settings, tmp_path):
    """Three connections, two sessions in all: the third evicts the least recently used free
    session of another connection, which is ended on the server, and gets an id of its own."""
    settings.SPARK_DIR = tmp_path  # the slots only: the server stays the session's
    settings.SPARK_MAX_SESSIONS = 2
    settings.SPARK_SESSION_POOL = 1
    code = UDF_READER.replace("PAUSE", "0")
    connectors = [
        make_connector(
            connection=make_connection(owner=owner, name=f"Tenant {n}"),
            name="Udf",
            code=code,
            interface="spark",
        )
        for n in range(3)
    ]

    def used(connector) -> str:
        run = preview_run(connector=connector, action="read")
        assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
        (session_id,) = session_ids(run.logs)
        return session_id

    first, second, third = (used(connector) for connector in connectors)
    again = used(connectors[0])  # evicts the second's

    assert len({first, second, third, again}) == 4  # an evicted slot gets a new id
    slots = engine_config.spark_sessions().slots()
    assert {slot.session_id for slot in slots} == {third, again}
    url = spark_server.remote()
    for evicted in (url_with_session(url, first), url_with_session(url, second)):
        assert wait_for(lambda url=evicted: session_closed(url), 60, 0.5)
    assert not session_closed(url_with_session(url, third))


def test_an_idle_session_is_ended(spark_server, connection, settings, tmp_path):
    """The local server ends a session idle for SPARK_SESSION_IDLE_S; its slot then gets a new
    id, so no request is handed a session the server closed."""
    jvm = cmdline(spark_server.jvm_pid())
    timeout_ms = round(settings.SPARK_SESSION_IDLE_S * 1000)
    assert f"spark.connect.session.manager.defaultSessionTimeout={timeout_ms}ms" in jvm
    settings.SPARK_DIR = tmp_path
    settings.SPARK_SESSION_IDLE_S = 1.0
    code = UDF_READER.replace("PAUSE", "0")
    connector = make_connector(connection=connection, name="Idle", code=code, interface="spark")
    runs = []
    for pause in (0.0, 1.5):
        time.sleep(pause)
        runs.append(preview_run(connector=connector, action="read"))
    for run in runs:
        assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    first, second = (session_ids(run.logs) for run in runs)
    assert first != second
