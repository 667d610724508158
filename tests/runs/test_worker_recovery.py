"""Nothing a dead process leaves is stranded: a live worker finishes every run exactly once.

The states dead processes leave are made directly in the site's database, as they would be left
(a process killed between two statements leaves exactly the rows written so far), then a real
`manage.py worker` must converge: every run succeeds once and the partitions equal the source.
`ingest --wait` and a worker are killed for real (SIGKILL) mid-run. Sites: tests/runs/manage_site.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs import selectors, tasks
from runs.ingest import recovery
from runs.models import Run, RunKind, RunStatus, WorkerHeartbeat
from tests.factories import make_connector
from tests.processes import processes_with_argument, wait_for
from tests.runs.ingest_helpers import FakeSource
from tests.runs.manage_site import worker_site

# Each state as a process that died at that moment leaves it (see the module docstring).
DEAD_STATES = """
import json, os, socket
from datetime import timedelta
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from runs import tasks
from runs.ingest import services
from runs.models import Run, RunStatus, WorkerHeartbeat
from tests.factories import UserFactory, make_connection, make_connector

spec = json.loads(os.environ["SPEC"])
connection = make_connection(owner=UserFactory(username="owner"), name="Sources")
now, long_ago = timezone.now(), timezone.now() - timedelta(hours=1)
runs = {}
for slug, code in spec["code"].items():
    connector = make_connector(connection=connection, name=slug, code=code)
    runs[slug] = (services.ingest_create(connector=connector).pk, connector.pk)


def task_taken_by(slug, worker):
    task = tasks.ingest_run.enqueue(run_id=runs[slug][0])
    DBTaskResult.objects.filter(pk=task.id).update(
        status=TaskResultStatus.RUNNING, started_at=now, worker_ids=[worker]
    )


# A worker (of this host, its process gone) took the task and died before claiming the run.
WorkerHeartbeat.objects.create(
    worker_id="gone-here", hostname=socket.gethostname(), pid=spec["dead_pid"],
    started_at=now, beat_at=now,
)
task_taken_by("handoff-here", "gone-here")
# The same by a worker whose row is gone too.
task_taken_by("handoff-unknown", "never-seen")
# "no-task": its creator died between committing the run and enqueueing its task.
# A worker on another host claimed the run and went silent an hour ago.
WorkerHeartbeat.objects.create(
    worker_id="gone-elsewhere", hostname="elsewhere", pid=4242, started_at=long_ago,
    beat_at=long_ago,
)
task_taken_by("silent", "gone-elsewhere")
Run.objects.filter(pk=runs["silent"][0]).update(
    status=RunStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago,
    executor="elsewhere:4242",
)
print(json.dumps(runs))
"""
TASKS = DBTaskResult._meta.db_table
SLUGS = ("handoff-here", "handoff-unknown", "no-task", "silent")


@pytest.fixture(scope="module")
def site():
    with worker_site() as site:
        yield site


@pytest.fixture
def sources():
    made: dict[str, FakeSource] = {}
    yield made
    for source in made.values():
        source.cleanup()


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def as_json(value):
    return json.loads(value) if isinstance(value, str) else value


def succeeded_reads(site, run_id: int) -> list[str]:
    rows = site.query(
        "SELECT name FROM runs_partitionjob WHERE run_id = ? AND action = 'read' "
        "AND status = 'succeeded'",
        run_id,
    )
    return sorted(name for (name,) in rows)


def all_finished(site, run_ids: list[int]) -> bool:
    return all(site.run_status(run_id) not in ("queued", "running") for run_id in run_ids)


def stop(worker: subprocess.Popen, how: int = signal.SIGKILL) -> str:
    if worker.poll() is None:
        worker.send_signal(how)
    output, _ = worker.communicate(timeout=60)
    return output


def test_a_live_worker_converges_from_what_dead_processes_left(site, sources):
    for slug in SLUGS:
        sources[slug] = FakeSource()
        for name in ("a", "b", "2025/c"):
            sources[slug].set(name, "v1", rows=5)
    spec = {"code": {slug: source.code for slug, source in sources.items()}, "dead_pid": dead_pid()}
    out = site.manage("shell", "-c", DEAD_STATES, spec=spec)
    runs = json.loads(out.strip().splitlines()[-1])
    # Fork servers of a dead app process leave their folder; a live process's stays.
    temp = Path(tempfile.gettempdir())
    dead_folder = Path(tempfile.mkdtemp(prefix=f"connector-sandbox-{spec['dead_pid']}-"))
    (dead_folder / "forkserver.log").write_text("left behind")
    live_folder = Path(tempfile.mkdtemp(prefix=f"connector-sandbox-{os.getpid()}-", dir=temp))

    worker = site.start_worker()
    try:
        assert wait_for(lambda: not dead_folder.exists(), timeout=60)
        assert wait_for(lambda: all_finished(site, [run_id for run_id, _ in runs.values()]), 120)
        (alive,) = site.query("SELECT worker_id, pid FROM runs_workerheartbeat")
        assert alive[1] == worker.pid  # the dead workers' rows are forgotten
    finally:
        output = stop(worker, signal.SIGTERM)
    assert worker.returncode == 0, output
    assert site.query("SELECT * FROM runs_workerheartbeat") == []  # a clean exit forgets it

    for slug, (run_id, connector_id) in runs.items():
        assert site.run_status(run_id) == RunStatus.SUCCEEDED, (slug, output)
        assert succeeded_reads(site, run_id) == ["2025/c", "a", "b"], slug  # each read once
        site.assert_matches_source(connector_id, sources[slug])
    (parameters,) = site.query("SELECT parameters FROM runs_run WHERE id = ?", runs["silent"][0])[0]
    assert as_json(parameters)["attempt"] == 2
    assert as_json(parameters)["attempts"][0]["executor"] == "elsewhere:4242"
    tasks_left = site.query(f"SELECT status, worker_ids, exception_class_path FROM {TASKS}")
    gone = ("gone-here", "never-seen", "gone-elsewhere")
    dead = [row for row in tasks_left if as_json(row[1])[0] in gone]
    assert len(dead) == 3 and {row[0] for row in dead} == {"FAILED"}
    assert {row[2] for row in dead} == {"runs.ingest.recovery.WorkerLost"}
    assert {row[0] for row in tasks_left} <= {"FAILED", "SUCCESSFUL"}  # nothing left running
    assert "Finished 3 task(s) of dead workers" in output
    assert f"Queued ingest(s) #{runs['silent'][0]} again" in output
    assert live_folder.exists()
    live_folder.rmdir()


def ingest_wait(site, slug: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "ingest", slug, "--wait"],
        cwd=settings.BASE_DIR,
        env=site.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_ingest_wait_killed_at_any_moment_is_finished_by_a_worker(site, sources):
    source = sources["wait"] = FakeSource()
    for name in ("a", "b", "c"):
        source.set(name, "v1", rows=10)
    _, connector_id = site.enqueue("wait-killed", source.code, enqueue=False)

    def run_ids() -> list[int]:
        rows = site.query(
            "SELECT id FROM runs_run WHERE connector_id = ? ORDER BY id", connector_id
        )
        return [run_id for (run_id,) in rows]

    # Killed as soon as its run exists: queued still, or just claimed.
    cli = ingest_wait(site, "wait-killed")
    assert wait_for(run_ids, timeout=60)
    stop(cli)
    (first,) = run_ids()
    worker = site.start_worker()
    try:
        assert wait_for(lambda: all_finished(site, [first]), timeout=60)
        assert site.run_status(first) == RunStatus.SUCCEEDED
        site.assert_matches_source(connector_id, source)

        # Killed mid-run, with a live worker beside it: the worker goes on with the run.
        marker = f"{uuid.uuid4().int % 100000 + 1000}.75"
        source.set("b", "v2", rows=7)
        source.set("slow", "v1", rows=10, spawn=marker, sleep=120)
        cli = ingest_wait(site, "wait-killed")
        assert wait_for(lambda: len(processes_with_argument(marker)) == 1, timeout=60)
        second = run_ids()[-1]
        assert site.run_status(second) == RunStatus.RUNNING
        stop(cli)
        assert wait_for(lambda: not processes_with_argument(marker), timeout=10)
        source.set("slow", "v1", rows=10)  # readable now
        assert wait_for(lambda: all_finished(site, [second]), timeout=60)
    finally:
        output = stop(worker)
    assert site.run_status(second) == RunStatus.SUCCEEDED, output
    (parameters,) = site.query("SELECT parameters FROM runs_run WHERE id = ?", second)[0]
    assert as_json(parameters)["attempt"] == 2
    assert as_json(parameters)["attempts"][0]["executor"].endswith(f":{cli.pid}")
    assert succeeded_reads(site, second) == ["b", "slow"]  # each once
    site.assert_matches_source(connector_id, source)


def test_a_stopped_worker_ends_its_run_interrupted_and_nobody_resumes_it(site, sources):
    marker = f"{uuid.uuid4().int % 100000 + 1000}.5"
    source = sources["stopped"] = FakeSource()
    source.set("a", "v1")
    source.set("slow", "v1", spawn=marker, sleep=120)
    run_id, _ = site.enqueue("stopped", source.code)
    worker = site.start_worker()
    try:
        assert wait_for(lambda: len(processes_with_argument(marker)) == 1, timeout=60)
        assert len(site.query("SELECT * FROM runs_workerheartbeat")) == 1
    finally:
        output = stop(worker, signal.SIGTERM)
    assert worker.returncode == 0, output
    assert wait_for(lambda: not processes_with_argument(marker), timeout=10)
    assert site.query("SELECT * FROM runs_workerheartbeat") == []
    assert site.run_status(run_id) == RunStatus.INTERRUPTED
    (message,) = site.query("SELECT error_message FROM runs_run WHERE id = ?", run_id)[0]
    assert "the worker was stopped" in message
    site.run_batch()
    assert site.run_status(run_id) == RunStatus.INTERRUPTED  # a graceful stop is final


# ---------------------------------------------------------------- one step at a time


def stale_running_run(connector, executor: str) -> Run:
    long_ago = timezone.now() - timedelta(hours=1)
    return Run.objects.create(
        connector=connector,
        kind=RunKind.INGEST,
        status=RunStatus.RUNNING,
        executor=executor,
        heartbeat_at=long_ago,
        started_at=long_ago,
        parameters={"allow_deletes": True},
        partitions_done=4,
        rows_written=40,
    )


@pytest.mark.django_db
def test_a_dead_executors_run_is_queued_again_until_its_attempts_are_spent(settings, connection):
    settings.INGEST_MAX_ATTEMPTS = 3
    run = stale_running_run(make_connector(connection=connection, name="Resumed"), "far:1")

    for attempt in (2, 3):
        assert recovery.running_ingests_recover(queue=tasks.INGEST_QUEUE) == ([run.pk], [])
        run.refresh_from_db()
        assert run.status == RunStatus.QUEUED and run.executor == "" and run.heartbeat_at is None
        assert (run.partitions_done, run.rows_written) == (0, 0)  # this attempt's, from zero
        assert run.parameters["attempt"] == attempt and run.parameters["allow_deletes"] is True
        assert [a["executor"] for a in run.parameters["attempts"]] == [
            f"far:{n}" for n in range(1, attempt)
        ]
        task = DBTaskResult.objects.order_by("-enqueued_at").first()
        assert task.args_kwargs["kwargs"] == {"run_id": run.pk}
        # The next attempt is claimed and its executor dies too.
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.RUNNING,
            executor=f"far:{attempt}",
            heartbeat_at=timezone.now() - timedelta(hours=1),
        )
    assert recovery.running_ingests_recover(queue=tasks.INGEST_QUEUE) == ([], [run.pk])
    run.refresh_from_db()
    assert run.status == RunStatus.INTERRUPTED
    assert "(far:3) stopped without finishing it (attempt 3 of 3)" in run.error_message
    assert DBTaskResult.objects.count() == 2


@pytest.mark.django_db
def test_a_run_with_a_cancel_request_is_not_resumed(connection):
    run = stale_running_run(make_connector(connection=connection, name="Cancelled"), "far:1")
    Run.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now())
    assert recovery.running_ingests_recover(queue=tasks.INGEST_QUEUE) == ([], [run.pk])
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_only_the_tasks_of_dead_workers_are_finished(connection):
    now = timezone.now()
    beats = {"live": now, "silent": now - timedelta(hours=1)}
    for worker_id, beat_at in beats.items():
        WorkerHeartbeat.objects.create(
            worker_id=worker_id, hostname="host", pid=1, started_at=now, beat_at=beat_at
        )
    connector = make_connector(connection=connection, name="Tasks")
    taken = {}
    for worker_id in ("live", "silent", "unknown"):
        run = Run.objects.create(connector=connector, kind=RunKind.INGEST, dry_run=True)
        task = tasks.ingest_run.enqueue(run_id=run.pk)
        DBTaskResult.objects.filter(pk=task.id).update(
            status="RUNNING", started_at=now, worker_ids=["earlier", worker_id]
        )
        taken[worker_id] = str(task.id)

    failed = recovery.dead_worker_tasks_fail(now=now)

    assert sorted(failed) == sorted(taken[w] for w in ("silent", "unknown"))
    statuses = {str(pk): status for pk, status in DBTaskResult.objects.values_list("id", "status")}
    assert {w: statuses[taken[w]] for w in taken} == {
        "live": "RUNNING",
        "silent": "FAILED",
        "unknown": "FAILED",
    }
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["live"]


@pytest.mark.django_db
def test_worker_status_counts_the_workers_with_a_recent_beat(settings):
    settings.WORKER_STALE_AFTER_S = 30
    now = timezone.now()
    assert selectors.worker_status(now=now) == {"alive": 0, "last_beat_at": None}
    for worker_id, age_s in (("a", 5), ("b", 60), ("c", 29)):
        WorkerHeartbeat.objects.create(
            worker_id=worker_id,
            hostname="h",
            pid=1,
            started_at=now - timedelta(hours=1),
            beat_at=now - timedelta(seconds=age_s),
        )
    assert selectors.worker_status(now=now) == {
        "alive": 2,
        "last_beat_at": now - timedelta(seconds=5),
    }
