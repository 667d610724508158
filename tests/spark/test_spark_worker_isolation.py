"""One tenant's Python code on the local Spark server against another's, and against the server.

Spark's Python workers of every session run as one uid in one PID namespace, beside the JVM that
holds every session's plans and data. The attacks here are real: a connection's mapInPandas (and
its Python data source, planned in a daemon of its own) reads every other process's
/proc/<pid>/environ, mem and cwd, looks for the server's token and for another connection's
credentials, and writes into the other sessions' working directories (on their import path).
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from connector_engine.spark.worker_site import landlock_abi
from runs.models import RunStatus
from runs.services import preview_run
from tests.factories import make_connection, make_connector

pytestmark = [pytest.mark.django_db, pytest.mark.spark]

# Its credentials are in its plan (the JVM) and in its workers' memory.
VICTIM = """\
import pandas as pd


def context(credentials):
    return {"secret": credentials}


def list_objects(context, metadata):
    yield {"name": "orders", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    secret = context["secret"]

    def count(frames):
        import builtins
        builtins.kept_credentials = secret  # a client library would keep them
        for frame in frames:
            yield frame.assign(length=len(secret))

    return spark.range(3).mapInPandas(count, "id long, length long")
"""

ATTACKER = """\
import pandas as pd
from pyspark.sql.datasource import DataSource, DataSourceReader


def list_objects(context, metadata):
    yield {"name": "probe", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    # Everything the workers run is defined here: cloudpickle ships closures by value.
    look_for = {"token": TOKEN.encode(), "credentials": CREDENTIALS.encode()}
    columns = ["place", "process", "what", "outcome"]
    schema = "place string, process string, what string, outcome string"

    def ppid(pid):
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[1])

    def outcome(read):
        try:
            found = read()
        except ProcessLookupError:
            return "gone"
        except OSError:
            return "refused"
        return next((name for name, value in look_for.items() if value in found), "readable")

    def memory(pid):
        # Anonymous memory (heaps, stacks), up to 1.5 GB: where credentials and plans are.
        scanned = 0
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
            for line in maps:
                fields = line.split()
                if "r" not in fields[1] or (len(fields) > 5 and not fields[5].startswith("[")):
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                while start < end and scanned < 1_500_000_000:
                    try:
                        mem.seek(start)
                        chunk = mem.read(min(end - start, 1 << 22))
                    except OSError:
                        break
                    if any(value in chunk for value in look_for.values()):
                        return chunk
                    scanned, start = scanned + len(chunk), start + len(chunk)
        return b""

    def probe(where):
        import os

        me = os.getpid()
        daemon = ppid(me)
        own_environ = lambda: open("/proc/self/environ", "rb").read()  # noqa: E731
        rows = [(where, "self", "environ", outcome(own_environ))]
        rows.append((where, "self", "os.environ", outcome(lambda: str(os.environ).encode())))
        for name in os.listdir("/proc"):
            # Not ours: all but this worker, its daemon and the daemon's other workers.
            if not name.isdigit() or int(name) in (me, daemon):
                continue
            try:
                if ppid(name) == daemon:
                    continue
                with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                    command = cmdline.read().split(b"\\0")[0].decode()
            except OSError:
                continue
            environ = lambda: open(f"/proc/{name}/environ", "rb").read()  # noqa: E731
            cwd = lambda: os.readlink(f"/proc/{name}/cwd").encode()  # noqa: E731
            rows.append((where, command, "environ", outcome(environ)))
            rows.append((where, command, "memory", outcome(lambda: memory(name))))
            rows.append((where, command, "cwd", outcome(cwd)))
        return rows

    class ProbeReader(DataSourceReader):
        def __init__(self):
            self.rows = probe("data source planning")  # in the planner's own daemon

        def read(self, partition):
            yield from self.rows

    class ProbeSource(DataSource):
        @classmethod
        def name(cls):
            return "probe"

        def schema(self):
            return schema

        def reader(self, schema):
            return ProbeReader()

    def from_udf(frames):
        for _ in frames:
            yield pd.DataFrame(probe("mapInPandas"), columns=columns)

    spark.dataSource.register(ProbeSource)
    udf = spark.range(1).mapInPandas(from_udf, schema)
    return udf.union(spark.read.format("probe").load())
"""

PLANTER = """\
import glob
import os

import pandas as pd


def list_objects(context, metadata):
    yield {"name": "plant", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    # A sitecustomize of our own in the session's artifacts (the workers' working directory):
    # were it imported first, our workers would run unguarded.
    with open("/tmp/sitecustomize.py", "w") as handle:
        handle.write("import os\\nos.environ['SHADOWED'] = 'yes'\\n")
    spark.addArtifacts("/tmp/sitecustomize.py", pyfile=True)

    def plant(frames):
        here = os.getcwd()
        targets = [os.path.join(d, "pandas.py") for d in glob.glob(os.path.dirname(here) + "/*")]
        scratch = os.environ["TMPDIR"]  # another process's scratch directory, too
        targets += [f"{d}/planted" for d in glob.glob(os.path.dirname(scratch) + "/*")]
        targets.remove(f"{scratch}/planted")
        targets += [os.path.join(STAGING, "planted.parquet"), os.path.join(WAREHOUSE, "planted")]
        rows = [("shadowed", os.environ.get("SHADOWED", "no"))]
        for target in targets:
            try:
                with open(target, "w") as handle:
                    handle.write("raise SystemExit('hijacked')")
                rows.append((target, "wrote"))
            except OSError as exc:
                rows.append((target, type(exc).__name__))
        for _ in frames:
            yield pd.DataFrame(rows, columns=["target", "outcome"])

    return spark.range(1).mapInPandas(plant, "target string, outcome string")
"""


@pytest.fixture
def victim(owner):
    credentials = f"victim-credential-{uuid.uuid4().hex}"
    connection = make_connection(owner=owner, name="Victim", credentials=credentials)
    return make_connector(connection=connection, name="Orders", code=VICTIM, interface="spark")


def attacker_connector(owner, name: str, code: str):
    connection = make_connection(owner=owner, name=f"Attacker {name}")
    return make_connector(connection=connection, name=name, code=code, interface="spark")


def preview(connector) -> list[list]:
    run = preview_run(connector=connector, action="read")
    assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    return run.result["rows"]


def victim_rows(victim) -> list[list]:
    """What the victim's preview shows: its rows, each with the length of its credentials."""
    return [[n, len(victim.connection.decrypted_credentials())] for n in range(3)]


def test_python_workers_cannot_read_other_processes_or_the_token(
    spark_server, owner, victim, settings
):
    settings.PREVIEW_TIMEOUT_S = 120.0  # the attacker scans every process's memory
    settings.PREVIEW_ROW_LIMIT = 10_000  # three rows per process, twice
    assert preview(victim) == victim_rows(victim)  # its workers stay, idle, after it
    code = ATTACKER.replace("TOKEN", repr(spark_server.token)).replace(
        "CREDENTIALS", repr(victim.connection.decrypted_credentials())
    )

    rows = preview(attacker_connector(owner, "Prober", code))

    places = {row[0] for row in rows}
    assert places == {"mapInPandas", "data source planning"}
    own = sorted(tuple(row) for row in rows if row[1] == "self")
    # A worker reads its own environment, without the token; as nobody (a root app), not even
    # its own /proc environ (a process that is not dumpable has root's /proc files).
    own_proc = "refused" if spark_server.runs_as_nobody else "readable"
    assert own == [
        (place, "self", what, own_proc if what == "environ" else "readable")
        for place in ("data source planning", "mapInPandas")
        for what in ("environ", "os.environ")
    ]
    others = [row for row in rows if row[1] != "self"]
    assert any(row[1].endswith("java") for row in others)  # the JVM was there to be read
    assert any("python" in row[1] for row in others)  # and the victim's and other workers
    leaks = [row for row in others if row[3] in ("token", "credentials")]
    assert not leaks
    refused = ("refused", "gone")
    # The JVM and every Python process: not dumpable; with Landlock, nothing outside the domain.
    exposed = [
        row
        for row in others
        if row[3] not in refused
        and (landlock_abi() or row[1].endswith("java") or "python" in row[1])
    ]
    assert not exposed
    assert preview(victim) == victim_rows(victim)  # still served


@pytest.mark.skipif(not landlock_abi(), reason="the kernel has no Landlock")
def test_python_workers_cannot_write_where_other_sessions_import_from(spark_server, owner, victim):
    assert preview(victim) == victim_rows(victim)  # a working directory to plant into
    code = PLANTER.replace("STAGING", repr(str(settings.SPARK_STAGING_DIR))).replace(
        "WAREHOUSE", repr(str(spark_server.warehouse_dir))
    )

    rows = dict(preview(attacker_connector(owner, "Planter", code)))

    assert rows.pop("shadowed") == "no"  # our sitecustomize ran, not the session's
    # The victim's working directory, its own, another scratch directory, staging, warehouse.
    assert len(rows) >= 5
    assert set(rows.values()) == {"PermissionError"}, rows
    assert not list(spark_server.work_dir.rglob("pandas.py"))
    assert preview(victim) == victim_rows(victim)
