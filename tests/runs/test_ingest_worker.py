"""The worker: runs queued ingests, survives kill -9 mid-run, goes on with the run when it starts
again.

The worker runs as a real `manage.py worker` subprocess, in a site of its own
(tests/runs/manage_site.py: why not pytest-django's test database).
"""

from __future__ import annotations

import json
import os
import signal
import uuid

import pytest
from django.utils import timezone

from runs import storage
from runs.ingest import services
from runs.models import Run, RunKind, RunStatus
from tests.factories import make_connector
from tests.processes import processes_with_argument, wait_for
from tests.runs.manage_site import worker_site


@pytest.fixture(scope="module")
def site():
    with worker_site() as site:
        yield site


def test_the_worker_runs_a_queued_ingest(site, source):
    source.set("a", "v1")
    source.set("2025/b", "v1")
    run_id, connector_id = site.enqueue("queued", source.code)
    assert site.run_status(run_id) == RunStatus.QUEUED
    site.run_batch()
    assert site.run_status(run_id) == RunStatus.SUCCEEDED
    site.assert_matches_source(connector_id, source)


def test_a_kill_9_mid_run_loses_nothing_and_doubles_nothing(site, source):
    marker = f"{uuid.uuid4().int % 100000 + 1000}.25"
    for name in ("a", "b", "c"):
        source.set(name, "v1", rows=10)
    source.set("slow-1", "v1", rows=10, spawn=marker, sleep=120)
    source.set("slow-2", "v1", rows=10, spawn=marker, sleep=120)
    run_id, connector_id = site.enqueue("crashy", source.code)
    worker = site.start_worker()
    try:
        assert wait_for(lambda: len(processes_with_argument(marker)) == 2, timeout=60)
        # The two probes are committed; c may share a batch with a slow one (batches commit
        # when they end), so it is committed or not.
        assert wait_for(lambda: {"a", "b"} <= set(site.committed(connector_id)))
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    # The sandboxed reads die with the worker: nothing keeps running.
    assert wait_for(lambda: not processes_with_argument(marker), timeout=10)
    assert site.run_status(run_id) == RunStatus.RUNNING  # nobody could record anything

    # A crash can also leave a temporary file and a written-but-never-committed file.
    leftovers = site.partitions / str(connector_id) / "slow-1-leftover"
    leftovers.mkdir(parents=True)
    (leftovers / ".x.parquet.abc.tmp").write_bytes(b"partial")
    (leftovers / "orphan.parquet").write_bytes(b"never committed")

    # The slow partitions read quickly now. A worker starting finds the run's executor dead and
    # queues it again; the next attempt reads only what was not committed.
    source.set("slow-1", "v1", rows=10)
    source.set("slow-2", "v1", rows=10)
    output = site.run_batch()
    assert f"Queued ingest(s) #{run_id} again" in output
    assert site.run_status(run_id) == RunStatus.SUCCEEDED
    (parameters,) = site.query("SELECT parameters FROM runs_run WHERE id = ?", run_id)[0]
    assert json.loads(parameters)["attempt"] == 2
    slow_jobs = site.query(
        "SELECT status, COUNT(*) FROM runs_partitionjob WHERE run_id = ? AND name LIKE 'slow%' "
        "GROUP BY status",
        run_id,
    )
    assert dict(slow_jobs) == {"cancelled": 2, "succeeded": 2}  # killed once, then read once
    reads = site.query(
        "SELECT name FROM runs_partitionjob WHERE run_id = ? AND status = 'succeeded'", run_id
    )
    assert sorted(name for (name,) in reads) == ["a", "b", "c", "slow-1", "slow-2"]
    assert not leftovers.exists()
    site.assert_matches_source(connector_id, source)

    # The source changes meanwhile; a new run converges to it exactly.
    source.set("c", "v2", rows=4)
    source.remove("a")
    second, _ = site.enqueue("crashy", source.code)
    site.run_batch()
    assert site.run_status(second) == RunStatus.SUCCEEDED
    (result,) = site.query("SELECT result FROM runs_run WHERE id = ?", second)[0]
    assert json.loads(result)["plan"]["counts"] == {"read": 1, "skip": 3, "delete": 1}
    site.assert_matches_source(connector_id, source)


@pytest.mark.django_db
def test_recovery_interrupts_only_runs_whose_process_is_gone(settings, tmp_path, connection):
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    connector = make_connector(connection=connection, name="Recover")
    other = make_connector(connection=connection, name="Busy")
    stale = timezone.now() - timezone.timedelta(seconds=3600)

    def running(target, executor, heartbeat):
        return Run.objects.create(
            connector=target,
            kind=RunKind.INGEST,
            status=RunStatus.RUNNING,
            executor=executor,
            heartbeat_at=heartbeat,
        )

    dead_here = running(connector, f"{os.uname().nodename}:{2**22 + 7}", timezone.now())
    alive_elsewhere = running(other, "another-host:1", timezone.now())
    silent = running(other, "another-host:2", stale)
    leftovers = []
    for target in (connector, other):
        directory = storage.connector_directory(target.pk) / "key"
        directory.mkdir(parents=True)
        leftovers.append(directory / ".f.parquet.1.tmp")
        leftovers[-1].write_bytes(b"x")

    assert sorted(services.ingest_recover()) == sorted([dead_here.pk, silent.pk])

    statuses = dict(Run.objects.values_list("pk", "status"))
    assert statuses[dead_here.pk] == statuses[silent.pk] == RunStatus.INTERRUPTED
    assert statuses[alive_elsewhere.pk] == RunStatus.RUNNING
    assert not leftovers[0].exists()  # its connector has no running ingest any more
    assert leftovers[1].exists()  # a live ingest may still be writing there
