"""The Spark engine's session comes from the pool: it waits for a free one, and a cancel or the
read timeout ends the wait. (The Spark job itself: tests/spark/test_spark_source.py.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from connector_engine.protocol import Limits, SandboxRequest
from connector_engine.spark.job import SparkJob, SparkJobError
from connectors_site import engine_config
from runs.ingest.reads import ReadContext
from runs.ingest.spark_reads import SparkReads

TENANT = "connection-1"


@pytest.fixture
def one_session(settings, tmp_path):
    """A pool of one session on a remote that is never reached."""
    settings.SPARK_REMOTE = "sc://localhost:1/;token=never-used"
    settings.SPARK_DIR = tmp_path / "spark"
    settings.SPARK_SESSION_POOL = 1


def spark_reads(timeout_s: float, cancel: threading.Event) -> SparkReads:
    request = SandboxRequest(
        action="read", code="", limits=Limits(timeout_s=timeout_s), tenant=TENANT
    )

    def no_sandbox(request, **kwargs):
        raise AssertionError("no sandbox request expected")

    return SparkReads(
        ReadContext(
            run_id=1,
            connector_id=1,
            code_fingerprint="code",
            request=request,
            cancel=cancel,
            execute=no_sandbox,
        )
    )


def job(tmp_path: Path) -> SparkJob:
    return SparkJob(
        name="job",
        request=SandboxRequest(action="read", code=""),
        objects=[{"name": "a", "fingerprint": "v1"}],
        schema=pa.schema([("a", pa.int64())]),
        staging=tmp_path / "staging",
        runtime=tmp_path / "engine.zip",
    )


def test_a_cancel_ends_the_wait_for_a_pooled_session(one_session, tmp_path):
    cancel = threading.Event()
    with engine_config.spark_session_lease(tenant=TENANT):  # the only session is in use
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        with pytest.raises(SparkJobError) as raised:
            spark_reads(600, cancel).run_job(job(tmp_path))
    assert raised.value.error["type"] == "Cancelled"
    assert time.monotonic() - started < 5


def test_a_run_whose_session_stays_busy_fails_with_spark_busy(one_session, tmp_path):
    lease = engine_config.spark_session_lease(tenant=TENANT)
    with lease, pytest.raises(SparkJobError) as raised:
        spark_reads(0.5, threading.Event()).run_job(job(tmp_path))
    assert raised.value.error["type"] == "SparkBusy"
    assert "0.5 s" in raised.value.error["message"]
