"""Python code the local Spark server runs for user code (mapInPandas, UDFs) runs under bubblewrap.

It sees none of DATA_DIR (database, secret key, credentials keys, control files) but the server's
own directories, ENVIRONMENTS_DIR read-only and SPARK_STAGING_DIR, which Spark writes; Python code
writes only its own scratch directory (TMPDIR) where the kernel has Landlock
(tests/spark/test_spark_worker_isolation.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection as db_connection

from connector_engine.spark.server import LocalSparkServer
from connector_engine.spark.worker_site import landlock_abi
from connectors_site import engine_config
from runs.models import RunStatus
from runs.services import preview_run
from tests.factories import make_connector
from tests.runs.ingest_helpers import SOURCES_ROOT

pytestmark = [pytest.mark.django_db, pytest.mark.spark]

PROBE = """\
import os

import pandas as pd


def list_objects(context, metadata):
    yield {"name": "probe", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    readable, writable = READABLE, WRITABLE

    def probe(frames):
        for _ in frames:
            rows = []
            for path in readable:
                try:
                    with open(path, "rb") as handle:
                        rows.append((path, "read " + handle.read(20).decode(errors="replace")))
                except OSError as exc:
                    rows.append((path, type(exc).__name__))
            for path in writable:
                try:
                    with open(os.path.expandvars(path), "w") as handle:
                        handle.write("from a Spark worker")
                    rows.append((path, "wrote"))
                except OSError as exc:
                    rows.append((path, type(exc).__name__))
            yield pd.DataFrame(rows, columns=["path", "outcome"])

    return spark.range(1).mapInPandas(probe, "path string, outcome string")
"""


def test_it_hides_the_data_directory_from_python_code_the_server_runs(spark_server, connection):
    assert spark_server.isolation == "bubblewrap"
    secret_key = str(settings.DATA_DIR / "secret_key")
    database = str(db_connection.settings_dict["NAME"])
    state = str(spark_server.state_path)
    for path in (secret_key, database, state):
        assert os.path.isfile(path), path  # there to be stolen, were it visible
    visible = settings.SPARK_STAGING_DIR / "visible.txt"
    package = settings.ENVIRONMENTS_DIR / "package.txt"
    staged = settings.SPARK_STAGING_DIR / "written.txt"
    not_written = settings.ENVIRONMENTS_DIR / "not-written.txt"
    scratch = "$TMPDIR/written.txt"  # its own scratch directory
    readable = [secret_key, database, state, str(visible), str(package)]
    writable = [scratch, str(staged), str(not_written), "/usr/not-written.txt"]
    code = PROBE.replace("READABLE", repr(readable)).replace("WRITABLE", repr(writable))
    connector = make_connector(connection=connection, name="Probe", code=code, interface="spark")
    visible.write_text("staged for Spark")
    package.write_text("an environment")
    try:
        run = preview_run(connector=connector, action="read")
        assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    finally:
        for path in (visible, package, staged, not_written):
            path.unlink(missing_ok=True)  # other tests expect these directories empty
    outcomes = dict(run.result["rows"])
    for hidden in (secret_key, database, state):  # never "read ..."
        assert outcomes[hidden] in ("FileNotFoundError", "PermissionError"), hidden
    assert outcomes[str(visible)] == "read staged for Spark"
    assert outcomes[str(package)] == "read an environment"
    assert outcomes[scratch] == "wrote"
    assert outcomes[str(staged)] == ("PermissionError" if landlock_abi() else "wrote")
    assert outcomes[str(not_written)] == "OSError"  # read-only
    assert outcomes["/usr/not-written.txt"] == "OSError"


def test_it_says_reduced_isolation_without_bubblewrap(tmp_path):
    server = LocalSparkServer(tmp_path, use_bwrap=False)
    assert server.isolation.startswith("reduced isolation: bubblewrap disabled")
    status = engine_config.spark_status(server)  # a manager that is never started
    assert status["label"] == "local Spark Connect server (local[*], reduced isolation)"
    assert status["isolation"] == server.isolation and status["up"] is False


@pytest.mark.skipif(os.geteuid() != 0, reason="the app runs as root here")
def test_python_code_the_server_runs_is_never_root_on_host_files(spark_server, connection):
    """A root app's server runs as nobody: a root-only file in a folder connector code may read
    stays closed to a Spark worker, while the world-readable file beside it opens."""
    assert spark_server.runs_as_nobody
    folder = Path(tempfile.mkdtemp(prefix="spark-root-only-", dir=SOURCES_ROOT))
    folder.chmod(0o755)
    private, public = folder / "root-only.txt", folder / "public.txt"
    private.write_text("ROOT-ONLY")
    private.chmod(0o600)
    public.write_text("for anyone")
    public.chmod(0o644)
    code = PROBE.replace("READABLE", repr([str(private), str(public)])).replace("WRITABLE", "[]")
    connector = make_connector(connection=connection, name="Root", code=code, interface="spark")
    try:
        run = preview_run(connector=connector, action="read")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    assert dict(run.result["rows"]) == {
        str(private): "PermissionError",
        str(public): "read for anyone",
    }
