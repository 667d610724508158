"""A site of its own for manage.py subprocesses (the worker, `ingest --wait`): a database,
partitions directory and environment.

These tests give the subprocesses a database of their own (migrated once per module) instead of
pytest-django's test database: another process opening that shared SQLite file while this
process holds it would reset its WAL index whenever some other test closed a raw file handle on
it (POSIX locks are per process), which shows up as "disk I/O error" in unrelated tests. Setup
and enqueueing go through `manage.py shell`; checks read the site's database with sqlite3.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
from django.conf import settings as django_settings

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
run = tasks.ingest_enqueue(connector=connector) if spec["enqueue"] else None
print(json.dumps({"run": run and run.pk, "connector": connector.pk}))
"""


class WorkerSite:
    """A database, partitions directory and environment for manage.py subprocesses."""

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

    def run(self, *args: str, spec: dict | None = None) -> subprocess.CompletedProcess:
        """Run `manage.py ARGS` in the site; return what it did, whatever its exit status."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=django_settings.BASE_DIR,
            env={**self.env, "SPEC": json.dumps(spec or {})},
            capture_output=True,
            text=True,
            timeout=180,
        )

    def manage(self, *args: str, spec: dict | None = None) -> str:
        done = self.run(*args, spec=spec)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def enqueue(self, slug: str, code: str, *, enqueue: bool = True) -> tuple[int | None, int]:
        """Create the connector (first time) and queue an ingest (unless not `enqueue`); return
        (run id, connector id)."""
        spec = {"slug": slug, "code": code, "enqueue": enqueue}
        out = self.manage("shell", "-c", SETUP, spec=spec)
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


@contextmanager
def worker_site() -> Iterator[WorkerSite]:
    """A migrated site in a temporary directory, removed at the end."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="cs-worker-site-", dir=base))
    site = WorkerSite(directory)
    site.manage("migrate", "--no-input", "-v", "0")
    try:
        yield site
    finally:
        shutil.rmtree(directory, ignore_errors=True)
