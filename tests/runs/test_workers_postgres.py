"""Several workers on PostgreSQL: 30 ingests, one worker killed mid-run, every run ends once.

Three real `manage.py worker` processes share one PostgreSQL database (a fresh one on the tests'
server: tests/runs/manage_site.py) and one partitions directory. A feeder (`manage.py shell`)
queues three rounds of ingests of ten connectors, each round once the connector's previous
ingest has ended (one active ingest per connector), changing the connector's source before each
round. One worker is killed with SIGKILL while an ingest it runs is half done; the others go on
with that ingest. Runs only when the tests run on PostgreSQL (DATABASE_URL=postgres://...).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from django.conf import settings
from django_tasks_db.models import DBTaskResult

from runs.models import RunStatus
from tests.processes import wait_for
from tests.runs.ingest_helpers import FakeSource
from tests.runs.manage_site import uses_postgres, worker_site

pytestmark = pytest.mark.skipif(
    not uses_postgres(),
    reason="several workers share a PostgreSQL database: run the tests with "
    "DATABASE_URL=postgres://... (tests/postgres.py starts a server)",
)

CONNECTORS = 10
ROUNDS = 3
TASKS = DBTaskResult._meta.db_table

FEEDER = """
import json, os, time
from connections.models import Connector
from runs import selectors, tasks
from tests.factories import UserFactory, make_connection, make_connector

spec = json.loads(os.environ["SPEC"])
connection = make_connection(owner=UserFactory(username="owner"), name="Sources")
connectors = {
    slug: make_connector(connection=connection, name=slug, code=source["code"])
    for slug, source in spec["sources"].items()
}
queued = {slug: [] for slug in connectors}
deadline = time.monotonic() + spec["timeout_s"]
while any(len(runs) < len(spec["sources"][slug]["rounds"]) for slug, runs in queued.items()):
    assert time.monotonic() < deadline, f"not all rounds were queued in time: {queued}"
    for slug, connector in connectors.items():
        source, runs = spec["sources"][slug], queued[slug]
        if len(runs) == len(source["rounds"]) or selectors.active_ingest(connector):
            continue
        # The connector's previous ingest has ended: its source changes, the next one is queued.
        temp = source["directory"] + "/manifest.json.tmp"
        with open(temp, "w") as handle:
            json.dump(source["rounds"][len(runs)], handle)
        os.chmod(temp, 0o644)
        os.replace(temp, source["directory"] + "/manifest.json")
        runs.append(tasks.ingest_enqueue(connector=connector).pk)
    time.sleep(0.1)
print(json.dumps({slug: [connectors[slug].pk, runs] for slug, runs in queued.items()}))
"""


def rounds_of(index: int) -> list[dict]:
    """Three states of a connector's source: each round reads, changes and deletes something."""
    sleep = 0.4  # each read takes a while, so a worker can be killed in the middle of a run

    def entry(fingerprint: str, rows: int) -> dict:
        return {"fingerprint": fingerprint, "rows": rows, "sleep": sleep}

    first = {f"p{n}": entry("v1", 3 + n + index) for n in range(4)}
    first["2025/q"] = entry("v1", 5)
    second = {**first, "p1": entry("v2", 7), "p4": entry("v1", 2)}
    del second["p0"]
    third = {**second, "p2": entry("v3", 1), "2025/r": entry("v1", 4)}
    return [first, second, third]


def manage_popen(site, *args: str, spec: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**site.env, "SPEC": json.dumps(spec or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def as_json(value):
    return json.loads(value) if isinstance(value, str) else value


def test_three_workers_run_thirty_ingests_once_each_though_one_is_killed():
    sources = {f"source-{i}": FakeSource() for i in range(CONNECTORS)}
    spec = {
        "timeout_s": 400,
        "sources": {
            slug: {"code": source.code, "directory": str(source.directory), "rounds": rounds_of(i)}
            for i, (slug, source) in enumerate(sources.items())
        },
    }
    workers: list[subprocess.Popen] = []
    with worker_site(postgres=True) as site:
        try:
            check_thirty_ingests(site, sources, spec, workers)
        finally:
            for process in workers:
                if process.poll() is None:
                    process.kill()
                    process.communicate(timeout=30)
            for source in sources.values():
                source.cleanup()


def check_thirty_ingests(site, sources: dict, spec: dict, workers: list) -> None:
    workers += [site.start_worker() for _ in range(3)]
    feeder = manage_popen(site, "shell", "-c", FEEDER, spec=spec)
    workers.append(feeder)  # stopped with the workers if anything fails

    # Kill a worker while an ingest it executes has committed part of its partitions.
    pids = {worker.pid: worker for worker in workers[:3]}
    victim_run: list[tuple[int, int]] = []

    def half_done() -> bool:
        rows = site.query(
            "SELECT id, executor FROM runs_run WHERE status = 'running' "
            "AND partitions_done >= 1 AND partitions_done < partitions_total"
        )
        for run_id, executor in rows:
            pid = int(executor.rpartition(":")[2] or 0)
            if pid in pids:
                victim_run.append((run_id, pid))
                return True
        return False

    assert wait_for(half_done, timeout=240, interval=0.02), "no run was ever half done"
    run_id, pid = victim_run[0]
    victim = pids[pid]
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)

    output, _ = feeder.communicate(timeout=spec["timeout_s"] + 60)
    assert feeder.returncode == 0, output
    queued = json.loads(output.strip().splitlines()[-1])
    all_runs = [run for _, runs in queued.values() for run in runs]
    assert len(all_runs) == CONNECTORS * ROUNDS == 30

    def all_ended() -> bool:
        statuses = site.query("SELECT status FROM runs_run")
        return all(status not in ("queued", "running") for (status,) in statuses)

    assert wait_for(all_ended, timeout=240, interval=0.5)
    survivors = [worker for worker in workers[:3] if worker is not victim]
    for worker in survivors:
        worker.send_signal(signal.SIGTERM)
    outputs = [worker.communicate(timeout=60)[0] for worker in survivors]
    assert [worker.returncode for worker in survivors] == [0, 0], outputs

    statuses = dict(site.query("SELECT id, status FROM runs_run"))
    assert sorted(statuses) == sorted(all_runs)
    assert set(statuses.values()) == {RunStatus.SUCCEEDED}, statuses
    (parameters,) = site.query("SELECT parameters FROM runs_run WHERE id = ?", run_id)[0]
    assert as_json(parameters)["attempt"] == 2  # resumed by another worker
    assert as_json(parameters)["attempts"][0]["executor"].endswith(f":{pid}")
    # No partition was read twice by one run (its killed attempt's reads stay done).
    doubled = site.query(
        "SELECT run_id, name FROM runs_partitionjob WHERE status = 'succeeded' "
        "GROUP BY run_id, name HAVING COUNT(*) > 1"
    )
    assert doubled == []
    for slug, (connector_id, _) in queued.items():
        sources[slug].entries = spec["sources"][slug]["rounds"][-1]
        site.assert_matches_source(connector_id, sources[slug])
    tasks = site.query(f"SELECT status, worker_ids, exception_class_path FROM {TASKS}")
    assert {status for status, _, _ in tasks} <= {"SUCCESSFUL", "FAILED"}
    lost = [row for row in tasks if row[0] == "FAILED"]
    assert [row[2] for row in lost] == ["runs.ingest.recovery.WorkerLost"]
    assert site.query("SELECT worker_id FROM runs_workerheartbeat") == []
