"""The worker: runs queued ingests, survives kill -9 mid-run, recovers when it starts again.

The worker runs as a real `manage.py worker` subprocess. These tests give it a database of its
own (migrated once per module) instead of pytest-django's test database: another process
opening that shared SQLite file while this process holds it would reset its WAL index whenever
some other test closed a raw file handle on it (POSIX locks are per process), which shows up as
"disk I/O error" in unrelated tests. Setup and enqueueing go through `manage.py shell`; checks
read the worker's database with sqlite3.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from runs import storage
from runs.ingest import services
from runs.models import Run, RunKind, RunStatus
from tests.factories import make_connector
from tests.processes import processes_with_argument, wait_for
from tests.runs.ingest_helpers import FakeSource

SETUP = """
import json, os
from connections.models import Connector
from runs import tasks
from tests.factories import UserFactory, make_connection, make_connector
spec = json.loads(os.environ["SPEC"])
connector = Connector.objects.filter(slug=spec["slug"]).first()
if connector is None:
    owner = UserFactory(username="owner-" + spec["slug"])
    connection = make_connection(owner=owner, name="Source " + spec["slug"])
    connector = make_connector(connection=connection, name=spec["slug"], code=spec["code"])
run = tasks.ingest_enqueue(connector=connector)
print(json.dumps({"run": run.pk, "connector": connector.pk}))
"""


class WorkerSite:
    """A database, partitions directory and environment for worker subprocesses."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.database = directory / "worker.sqlite3"
        self.partitions = directory / "partitions"
        self.env = {
            **os.environ,
            "DATA_DIR": str(django_settings.DATA_DIR),
            "DATABASE_URL": f"sqlite:///{self.database}",
            "PARTITIONS_DIR": str(self.partitions),
            "INGEST_CONCURRENCY": "2",
        }

    def manage(self, *args: str, spec: dict | None = None) -> str:
        env = {**self.env, "SPEC": json.dumps(spec or {})}
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=django_settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def enqueue(self, slug: str, code: str) -> tuple[int, int]:
        """Create the connector (first time) and queue an ingest; return (run id, connector id)."""
        out = self.manage("shell", "-c", SETUP, spec={"slug": slug, "code": code})
        ids = json.loads(out.strip().splitlines()[-1])
        return ids["run"], ids["connector"]

    def start_worker(self, *arguments: str) -> subprocess.Popen:
        argv = [sys.executable, "manage.py", "worker", "--no-reload", "--no-startup-delay"]
        return subprocess.Popen(
            [*argv, "--interval", "0.1", *arguments],
            cwd=django_settings.BASE_DIR,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run_batch(self) -> str:
        worker = self.start_worker("--batch")
        output, _ = worker.communicate(timeout=180)
        assert worker.returncode == 0, output
        return output

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.database, timeout=20) as db:
            return db.execute(sql, params).fetchall()

    def run_status(self, run_id: int) -> str:
        return self.query("SELECT status FROM runs_run WHERE id = ?", run_id)[0][0]

    def committed(self, connector_id: int) -> dict[str, str]:
        rows = self.query(
            "SELECT name, fingerprint FROM runs_partition WHERE connector_id = ?", connector_id
        )
        return dict(rows)

    def assert_matches_source(self, connector_id: int, source: FakeSource) -> None:
        """Committed rows, files and their contents equal the source exactly."""
        assert self.committed(connector_id) == source.expected()
        rows = self.query(
            "SELECT name, row_count, storage_path FROM runs_partition WHERE connector_id = ?",
            connector_id,
        )
        referenced = set()
        for name, row_count, storage_path in rows:
            path = (self.partitions / storage_path).resolve()
            table = pq.read_table(path)
            assert table.num_rows == row_count == source.entries[name]["rows"]
            assert table.column("i").to_pylist() == list(range(row_count))
            referenced.add(path)
        directory = self.partitions / str(connector_id)
        on_disk = {p.resolve() for p in directory.rglob("*") if p.is_file()}
        assert on_disk == referenced, "orphan or temporary files left behind"


@pytest.fixture(scope="module")
def site():
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="cs-worker-site-", dir=base))
    site = WorkerSite(directory)
    site.manage("migrate", "--no-input", "-v", "0")
    yield site
    shutil.rmtree(directory, ignore_errors=True)


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
        assert wait_for(lambda: len(site.committed(connector_id)) == 3)
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

    output = site.run_batch()  # a worker starting marks the dead run interrupted
    assert f"#{run_id}" in output
    assert site.run_status(run_id) == RunStatus.INTERRUPTED
    slow_jobs = site.query(
        "SELECT DISTINCT status FROM runs_partitionjob WHERE run_id = ? AND name LIKE 'slow%'",
        run_id,
    )
    assert slow_jobs == [("cancelled",)]
    assert not leftovers.exists()

    # The source changes meanwhile; a new run converges to it exactly.
    source.set("slow-1", "v1", rows=10)
    source.set("slow-2", "v1", rows=10)
    source.set("c", "v2", rows=4)
    source.remove("a")
    second, _ = site.enqueue("crashy", source.code)
    site.run_batch()
    assert site.run_status(second) == RunStatus.SUCCEEDED
    (result,) = site.query("SELECT result FROM runs_run WHERE id = ?", second)[0]
    assert json.loads(result)["plan"]["counts"] == {"read": 3, "skip": 1, "delete": 1}
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
