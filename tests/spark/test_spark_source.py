"""Scale-out ingest: partitions read as one Spark job through a Python Data Source.

Real pyspark, the real local Connect server, the real sandbox for the normal path; every test
compares with what the normal (sandbox) path writes for the same connector.
"""

from __future__ import annotations

import uuid

import pyarrow.parquet as pq
import pytest
from django.conf import settings

from connections.models import Connector
from connector_engine.spark.server import LocalSparkServer
from connectors_site import engine_config
from runs import storage
from runs.ingest import services
from runs.models import JobStatus, Partition, PartitionJob, RunStatus
from tests.environments.helpers import IMPORTING_CODE, upload_wheel
from tests.factories import make_connector
from tests.processes import processes_with_argument
from tests.runs.ingest_helpers import (
    assert_partitions_match_source,
    cancel_while_running,
    ingest,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.spark,
    pytest.mark.usefixtures("spark_server", "ingest_settings"),
]


COLUMNS = ("name", "fingerprint", "i")


def stored(connector) -> dict[str, tuple[str, int, list, list]]:
    """{name: (fingerprint, rows, schema, rows as dicts)} of a connector's committed partitions."""
    found = {}
    for partition in Partition.objects.filter(connector=connector):
        table = pq.read_table(storage.absolute_path(partition.storage_path))
        found[partition.name] = (
            partition.fingerprint,
            partition.row_count,
            partition.schema,
            table.to_pylist(),
        )
    return found


def job_states(run) -> dict[str, tuple[str, str]]:
    jobs = PartitionJob.objects.filter(run=run)
    return {job.name: (job.status, job.error_type) for job in jobs}


def test_spark_ingest_writes_the_same_partitions_as_the_sandbox(connection, source):
    source.set("a", "v1", rows=5)
    source.set("2024/b.csv", "v1", rows=2)
    source.set("empty", "v1", rows=0)
    source.set("broken", "v1", fail=True)
    normal = make_connector(connection=connection, name="Normal", code=source.code)
    scaled = make_connector(connection=connection, name="Scaled", code=source.code)

    normal_run = ingest(normal)
    spark_run = ingest(scaled, engine="spark")

    assert normal_run.status == spark_run.status == RunStatus.FAILED  # "broken" fails in both
    assert spark_run.error_type == "PartitionsFailed"
    scaled_parts, normal_parts = stored(scaled), stored(normal)
    assert set(scaled_parts) == set(normal_parts) == {"a", "2024/b.csv", "empty"}
    # An empty pandas frame has no types of its own (float64 columns): the sandbox path keeps
    # them, the Spark path writes the job's schema. Everything else is the same.
    assert normal_parts["empty"][2] == [{"name": n, "type": "float64"} for n in COLUMNS]
    assert scaled_parts.pop("empty")[2] == scaled_parts["a"][2]
    assert normal_parts.pop("empty")[:2] == ("v1", 0)
    assert scaled_parts == normal_parts
    assert job_states(spark_run) == job_states(normal_run)
    broken = PartitionJob.objects.get(run=spark_run, name="broken")
    assert broken.error_type == "RuntimeError"
    assert "cannot read broken" in broken.error_message
    assert broken.error_function == "read_pandas_dataframe" and broken.error_line
    assert spark_run.rows_written == normal_run.rows_written == 7
    assert "Spark job: 4 partition(s)" in spark_run.logs
    assert "reading a" in PartitionJob.objects.get(run=spark_run, name="a").logs
    assert not any(settings.SPARK_STAGING_DIR.glob("*")), "staging left behind"

    source.remove("broken")
    assert_partitions_match_source_but(scaled, source, missing=set())


def assert_partitions_match_source_but(connector, source, missing: set[str]) -> None:
    """The stored partitions equal the source's entries, except those in `missing`."""
    entries = {name: entry for name, entry in source.entries.items() if name not in missing}
    saved, source.entries = source.entries, entries
    try:
        assert_partitions_match_source(connector, source)
    finally:
        source.entries = saved


def test_spark_ingest_reads_only_new_or_changed_partitions(connection, source, settings):
    settings.INGEST_TIMEOUT_S = 3
    source.set("keep", "v1")
    source.set("change", "v1")
    connector = make_connector(connection=connection, name="Scaled", code=source.code)
    first = ingest(connector, engine="spark")
    assert first.status == RunStatus.SUCCEEDED, (first.error_type, first.error_message)
    kept = Partition.objects.get(connector=connector, name="keep")

    source.set("change", "v2", rows=4)
    source.set("slow", "v1", sleep=30)
    second = ingest(connector, engine="spark")

    assert second.result["plan"]["counts"] == {"read": 2, "skip": 1, "delete": 0}
    states = job_states(second)
    assert states["change"] == (JobStatus.SUCCEEDED, "")
    assert states["slow"] == (JobStatus.FAILED, "Timeout")
    assert Partition.objects.get(connector=connector, name="keep").run_id == kept.run_id
    assert_partitions_match_source_but(connector, source, missing={"slow"})


def test_spark_ingest_of_a_bytes_connector_matches_the_sandbox(examples):
    example = Connector.objects.get(slug="sales-csv-folders")
    scaled = make_connector(
        connection=example.connection,
        name="Sales on Spark",
        code=example.code,
        interface="bytes",
        parser="csv",
    )
    normal_run = ingest(example)
    spark_run = ingest(scaled, engine="spark")
    assert normal_run.status == spark_run.status == RunStatus.SUCCEEDED, spark_run.error_message
    assert stored(scaled) == stored(example)
    assert len(stored(scaled)) == normal_run.partitions_done > 1


def test_credentials_printed_by_a_reader_are_masked_and_its_rows_land_as_they_are(
    connection, source
):
    secret = "tok-SECRET-4242"  # the connection fixture's credentials
    code = source.code.replace(
        'print("reading", metadata["name"])', 'print("token is", context["token"])'
    ).replace('"i": list(range(n)),', '"i": list(range(n)), "leak": [context["token"]] * n,')
    code += "\n\ndef context(credentials):\n    return json.loads(credentials)\n"
    source.set("a", "v1", rows=2)
    connector = make_connector(connection=connection, name="Leaky", code=code)
    run = ingest(connector, engine="spark")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    job = PartitionJob.objects.get(run=run, name="a")
    assert "token is" in job.logs and secret not in job.logs
    partition = Partition.objects.get(connector=connector, name="a")
    table = pq.read_table(storage.absolute_path(partition.storage_path))
    # Masking is for what people see, never for data.
    assert table.column("leak").to_pylist() == [secret, secret]
    assert secret not in run.logs


def test_the_same_code_scales_out_on_a_configured_remote(tmp_path, settings, connection, source):
    """A second server stands in for a cluster: SPARK_REMOTE points at it, and the staging
    directory is a path both sides see (as a shared mount would be)."""
    staging = tmp_path / "shared-staging"
    staging.mkdir()
    remote = LocalSparkServer(
        tmp_path / "remote",
        warm_up=False,
        writable_paths=[staging],
        readable_paths=settings.SANDBOX_READABLE_PATHS,  # where the test's source lives
    )
    local = engine_config.spark_server()
    starts = local.starts
    source.set("a", "v1", rows=3)
    source.set("2024/b.csv", "v1", rows=2)
    connector = make_connector(connection=connection, name="Remote", code=source.code)
    try:
        settings.SPARK_REMOTE = remote.remote()
        settings.SPARK_STAGING_DIR = staging
        token = remote.token
        run = ingest(connector, engine="spark")
    finally:
        remote.stop()
    assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    assert "Spark job: 2 partition(s) read on Spark Connect at sc://localhost" in run.logs
    assert token and token not in run.logs
    assert_partitions_match_source(connector, source)
    assert local.starts == starts
    assert not any(staging.iterdir())


def test_the_connections_packages_are_importable_in_sparks_workers(connection, settings):
    # The default ENVIRONMENTS_DIR: the local server sees it (read-only), and nothing else.
    settings.ENVIRONMENT_PIP_ARGS = ["--isolated", "--no-index"]
    try:
        upload_wheel(connection)
        connector = make_connector(
            connection=connection, name="Tiny", code=IMPORTING_CODE, packages="tinypkg==0.1"
        )
        run = ingest(connector, engine="spark")
        assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
        partition = Partition.objects.get(connector=connector)
        table = pq.read_table(storage.absolute_path(partition.storage_path))
        assert table.column("value").to_pylist() == ["tinypkg 0.1"]
    finally:
        engine_config.sandboxes().stop()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_interrupts_the_spark_job_and_commits_nothing(connection, source):
    # b-slow starts `sleep <marker>` (a process the test can see), then hangs in Python.
    marker = f"7.{uuid.uuid4().int % 10**6:06d}"
    source.set("a-fast", "v1")
    source.set("b-slow", "v1", spawn=marker, sleep=120)
    connector = make_connector(connection=connection, name="Slow", code=source.code)
    run = services.ingest_create(connector=connector, engine="spark")
    reads = PartitionJob.objects.filter(run=run, status=JobStatus.RUNNING)

    def ready() -> bool:  # b-slow is being read in Spark (the sample read is of a-fast)
        return reads.count() == 2 and bool(processes_with_argument(marker))

    run = cancel_while_running(run, ready, within_s=30)
    assert run.status == RunStatus.CANCELLED, (run.error_type, run.error_message)
    assert set(job_states(run).values()) == {(JobStatus.CANCELLED, "Cancelled")}
    assert not Partition.objects.filter(connector=connector).exists()
    assert not any(settings.SPARK_STAGING_DIR.glob("*")), "staging left behind"


def test_a_spark_connector_cannot_scale_out_and_unknown_engines_are_refused(connection):
    spark_connector = make_connector(connection=connection, name="S", interface="spark")
    with pytest.raises(services.InvalidIngestOption, match="already reads through Spark"):
        services.ingest_create(connector=spark_connector, engine="spark")
    pandas_connector = make_connector(connection=connection, name="P")
    with pytest.raises(services.InvalidIngestOption, match="Unknown ingest engine 'dask'"):
        services.ingest_create(connector=pandas_connector, engine="dask")
