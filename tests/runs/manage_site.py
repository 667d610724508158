"""A site of its own for manage.py subprocesses (the worker, `ingest --wait`): a database,
partitions directory and environment.

These tests give the subprocesses a database of their own (migrated once per module) instead of
pytest-django's test database: another process opening that shared SQLite file while this
process holds it would reset its WAL index whenever some other test closed a raw file handle on
it (POSIX locks are per process), which shows up as "disk I/O error" in unrelated tests. Setup
and enqueueing go through `manage.py shell`; checks read the site's database with sqlite3.
`worker_site(postgres=True)` creates a fresh database on the PostgreSQL server the tests use
instead (checks read it with psycopg), and drops it at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
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
    """A database, partitions directory and environment for manage.py subprocesses.

    `postgres` names a database on the tests' PostgreSQL server (a dict of psycopg connection
    parameters); without it the site has its own SQLite file.
    """

    def __init__(self, directory: Path, postgres: dict | None = None) -> None:
        self.directory = directory
        self.database = directory / "worker.sqlite3"
        self.postgres = postgres
        self.partitions = directory / "partitions"
        self.env = {
            **os.environ,
            "DATA_DIR": str(django_settings.DATA_DIR),
            "DATABASE_URL": postgres_url(postgres) if postgres else f"sqlite:///{self.database}",
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

    def start_worker(self, *arguments: str, env: dict | None = None) -> subprocess.Popen:
        argv = [sys.executable, "manage.py", "worker", "--no-reload", "--no-startup-delay"]
        return subprocess.Popen(
            [*argv, "--interval", "0.1", *arguments],
            cwd=django_settings.BASE_DIR,
            env={**self.env, **(env or {})},
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
        """Run one statement (`?` placeholders) in the site's database; return its rows."""
        if self.postgres:
            with psycopg.connect(**self.postgres, autocommit=True) as db:
                cursor = db.execute(sql.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
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


def uses_postgres() -> bool:
    """Whether the tests run on PostgreSQL (DATABASE_URL=postgres://...)."""
    return django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def postgres_url(database: dict) -> str:
    user = quote(database["user"], safe="") + (
        ":" + quote(database["password"], safe="") if database["password"] else ""
    )
    return f"postgres://{user}@{database['host']}:{database['port']}/{database['dbname']}"


@contextmanager
def postgres_database() -> Iterator[dict]:
    """A fresh, empty database on the tests' PostgreSQL server, dropped at the end."""
    default = django_settings.DATABASES["default"]
    server = {
        "host": default["HOST"] or "127.0.0.1",
        "port": default["PORT"] or "5432",
        "user": default["USER"],
        "password": default["PASSWORD"],
    }
    name = f"cs_site_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**server, "dbname": name}
    finally:
        with psycopg.connect(**server, dbname="postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def worker_site(*, postgres: bool = False) -> Iterator[WorkerSite]:
    """A migrated site in a temporary directory, removed at the end; with `postgres`, its
    database is a fresh one on the tests' PostgreSQL server (the tests must run on it)."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="cs-worker-site-", dir=base))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        database = stack.enter_context(postgres_database()) if postgres else None
        site = WorkerSite(directory, postgres=database)
        site.manage("migrate", "--no-input", "-v", "0")
        yield site
