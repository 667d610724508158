"""Cancelling an ingest kills its running reads; what was committed stays."""

from __future__ import annotations

import threading
import uuid

import pytest

from runs.ingest import services
from runs.models import JobStatus, RunStatus
from tests.factories import make_connector
from tests.processes import processes_with_argument, wait_for
from tests.runs.ingest_helpers import FakeSource, cancel_while_running, committed

pytestmark = pytest.mark.usefixtures("ingest_settings")


def slow_source(source: FakeSource) -> str:
    """Two quick partitions, then two that start a child process and hang."""
    marker = f"{uuid.uuid4().int % 100000 + 1000}.5"
    source.set("a-fast", "v1")
    source.set("b-fast", "v1")
    source.set("c-slow", "v1", spawn=marker, sleep=120)
    source.set("d-slow", "v1", spawn=marker, sleep=120)
    return marker


def both_slow_reads_started(marker: str) -> bool:
    return len(processes_with_argument(marker)) == 2


@pytest.mark.django_db(transaction=True)
def test_it_kills_running_reads_and_keeps_what_was_committed(connection, source):
    marker = slow_source(source)
    connector = make_connector(connection=connection, name="Slow", code=source.code)
    run = services.ingest_create(connector=connector)

    def ready() -> bool:
        assert wait_for(lambda: both_slow_reads_started(marker)), "the slow reads never started"
        return len(committed(connector)) == 2

    run = cancel_while_running(run, ready, within_s=5)
    assert run.status == RunStatus.CANCELLED
    assert run.error_type == "Cancelled"
    assert wait_for(lambda: not processes_with_argument(marker), timeout=5), "children survived"
    assert committed(connector) == {"a-fast": "v1", "b-fast": "v1"}
    statuses = dict(run.partition_jobs.values_list("name", "status"))
    assert statuses == {
        "a-fast": JobStatus.SUCCEEDED,
        "b-fast": JobStatus.SUCCEEDED,
        "c-slow": JobStatus.CANCELLED,
        "d-slow": JobStatus.CANCELLED,
    }
    assert run.partitions_failed == 0


@pytest.mark.django_db
def test_a_queued_run_is_cancelled_at_once(connector):
    run = services.ingest_create(connector=connector)
    assert services.ingest_cancel(run=run)
    assert run.status == RunStatus.CANCELLED
    # Its task may still run later: it finds the run no longer queued and does nothing.
    assert services.ingest_execute(run_id=run.pk).status == RunStatus.CANCELLED
    assert not run.partition_jobs.exists()


@pytest.mark.django_db
def test_a_finished_run_cannot_be_cancelled(connector):
    run = services.ingest_create(connector=connector)
    run = services.ingest_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED
    assert not services.ingest_cancel(run=run)
    assert run.status == RunStatus.SUCCEEDED


@pytest.mark.django_db
def test_a_stop_interrupts_the_run_and_kills_its_reads(source, connection):
    marker = slow_source(source)
    connector = make_connector(connection=connection, name="Slow", code=source.code)
    run = services.ingest_create(connector=connector)
    stop = threading.Event()
    watcher = threading.Thread(
        target=lambda: wait_for(lambda: both_slow_reads_started(marker)) and stop.set()
    )
    watcher.start()
    run = services.ingest_execute(run_id=run.pk, stop=stop)
    watcher.join()
    assert run.status == RunStatus.INTERRUPTED
    assert "the worker was stopped" in run.error_message
    assert committed(connector) == {"a-fast": "v1", "b-fast": "v1"}
    assert wait_for(lambda: not processes_with_argument(marker), timeout=5)
