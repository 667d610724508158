"""The sandbox engine: many partitions per sandboxed child, per-partition outcomes."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from connector_engine.ingest.batching import BatchSizer
from connector_engine.protocol import SandboxRequest, SandboxResult
from runs import services, storage
from runs.ingest import services as ingest_services
from runs.ingest.execution import IngestExecution, ingest_claim
from runs.ingest.reads import Execute, SandboxReads
from runs.models import JobStatus, Partition, PartitionJob, RunStatus
from tests.factories import make_connector
from tests.runs.ingest_helpers import assert_partitions_match_source, committed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]

SECRET = "tok-SECRET-4242"  # the `connection` fixture's token

# Extra manifest switches for these tests: "exit" ends the process, "segfault" crashes it,
# "leak" returns the connection's token in the rows, "wide" returns other columns.
EXTRA_BEHAVIOUR = """
    if entry.get("exit"):
        import os
        os._exit(3)
    if entry.get("segfault"):
        import ctypes
        ctypes.string_at(0)
    if entry.get("oom"):
        raise MemoryError()
    if entry.get("leak"):
        print("token", context["token"])
        return pd.DataFrame({"name": [metadata["name"]], "token": [context["token"]]})
    if entry.get("wide"):
        return pd.DataFrame({"when": pd.to_datetime(["2024-05-01"]), "amount": [1.5]})
    if entry.get("fail"):"""

CONTEXT = """
def context(credentials):
    if "context fails" in open(SOURCE + "/manifest.json").read():
        raise PermissionError("context fails")
    return json.loads(credentials)
"""


class WholeBatches(BatchSizer):
    """Reads every partition of a test in one batch (the real sizer starts with single reads)."""

    def __init__(self) -> None:
        super().__init__(limit=1, readers=1, timeout_s=1)

    def next_size(self, remaining: int) -> int:
        return remaining


@pytest.fixture
def requests() -> list[list[str]]:
    """The sandbox reads the ingest made: a list of leaf names per request."""
    return []


@pytest.fixture
def execute(requests) -> Execute:
    """Run sandbox requests as an ingest does, recording each read's leaves in `requests`."""

    def recording(request: SandboxRequest, **kwargs) -> SandboxResult:
        if request.action == "read":
            leaves = request.objects if request.objects is not None else [request.object]
            requests.append([leaf["name"] for leaf in leaves])
        return services.run_in_sandbox(request, **kwargs)

    return recording


@pytest.fixture
def source_connector(connection, source):
    code = source.code.replace('    if entry.get("fail"):', EXTRA_BEHAVIOUR, 1)
    code = code.replace("\n\ndef list_objects", CONTEXT + "\n\ndef list_objects", 1)
    return make_connector(connection=connection, name="Batched", code=code)


def ingest_run(connector, execute: Execute):
    """Ingest with whole batches, every sandbox request going through `execute`."""
    run = ingest_services.ingest_create(connector=connector)
    run = ingest_claim(run_id=run.pk)
    return IngestExecution(
        run,
        execute=execute,
        read_engine=lambda context: SandboxReads(context, sizer=WholeBatches()),
    ).execute()


def job(run, name: str) -> PartitionJob:
    return PartitionJob.objects.get(run=run, name=name)


def test_a_batch_commits_every_partition_on_its_own(source_connector, source, requests, execute):
    for name in ("a", "b", "2024/c"):
        source.set(name, "v1", rows=4)
    run = ingest_run(source_connector, execute)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert [sorted(names) for names in requests] == [["2024/c", "a", "b"]]
    assert_partitions_match_source(source_connector, source)
    for name in ("a", "b", "2024/c"):
        assert (job(run, name).status, job(run, name).rows, job(run, name).logs) == (
            JobStatus.SUCCEEDED,
            4,
            "",
        )
    first, last = requests[0][0], requests[0][-1]
    assert f"--- partitions {first} … {last} (a batch of 3) ---" in run.logs
    assert "reading a" in run.logs and "reading 2024/c" in run.logs


def test_a_partition_that_raises_fails_alone_in_its_batch(
    source_connector, source, requests, execute
):
    source.set("a", "v1")
    source.set("bad", "v1", fail=True)
    source.set("c", "v1")
    run = ingest_run(source_connector, execute)

    assert requests == [["a", "bad", "c"]]  # no retry: the reader's exception is the answer
    assert run.status == RunStatus.FAILED and run.error_type == "PartitionsFailed"
    assert run.result["failed_partitions"] == ["bad"]
    assert committed(source_connector) == {"a": "v1", "c": "v1"}
    failed = job(run, "bad")
    assert failed.status == JobStatus.FAILED
    assert (failed.error_type, failed.error_message) == ("RuntimeError", "cannot read bad")
    assert failed.error_function == "read_pandas_dataframe"
    line = source_connector.code.splitlines()[failed.error_line - 1]
    assert 'raise RuntimeError("cannot read " + metadata["name"])' in line


@pytest.mark.parametrize(
    ("crash", "error_type"), [("exit", "ProcessExit"), ("segfault", "KilledBySignal")]
)
def test_a_crash_in_a_batch_is_retried_one_partition_at_a_time(
    source_connector, source, requests, execute, crash, error_type
):
    source.set("a", "v1")
    source.set("b", "v1", **{crash: True})
    source.set("c", "v1")
    run = ingest_run(source_connector, execute)

    assert requests == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert run.result["failed_partitions"] == ["b"]
    assert committed(source_connector) == {"a": "v1", "c": "v1"}
    assert job(run, "b").error_type == error_type
    assert job(run, "a").status == job(run, "c").status == JobStatus.SUCCEEDED
    assert job(run, "a").logs == "reading a\n"  # read alone: the job keeps its own output
    assert f"[the batch failed as a whole ({error_type}:" in run.logs
    source.set("b", "v1")
    assert ingest_run(source_connector, execute).status == RunStatus.SUCCEEDED
    assert_partitions_match_source(source_connector, source)


def test_a_partition_out_of_memory_in_a_batch_is_read_again_alone(
    source_connector, source, requests, execute
):
    source.set("a", "v1")
    source.set("big", "v1", oom=True)
    source.set("c", "v1")
    run = ingest_run(source_connector, execute)

    assert requests == [["a", "big", "c"], ["big"]]  # the batch's other tables held memory too
    assert committed(source_connector) == {"a": "v1", "c": "v1"}
    assert job(run, "big").error_type == "MemoryLimit"


def test_a_batch_timeout_is_retried_with_the_timeout_of_one_read(
    source_connector, source, requests, execute, settings
):
    settings.INGEST_TIMEOUT_S = 2.0
    source.set("a", "v1")
    source.set("slow", "v1", sleep=30)
    source.set("c", "v1")
    run = ingest_run(source_connector, execute)

    assert requests == [["a", "slow", "c"], ["a"], ["slow"], ["c"]]
    assert committed(source_connector) == {"a": "v1", "c": "v1"}
    assert job(run, "slow").error_type == "Timeout"
    assert run.result["failed_partitions"] == ["slow"]


def test_a_context_error_fails_the_whole_batch_without_retries(
    source_connector, source, requests, execute
):
    source.set("a", "v1")
    source.set("b", "v1")

    def list_then_break_context(request, **kwargs):
        result = execute(request, **kwargs)
        if request.action == "list":
            source.set("b", "v1", note="context fails")  # from now on, context() raises
        return result

    run = ingest_run(source_connector, list_then_break_context)

    assert requests == [["a", "b"]]  # every partition would fail the same way alone
    assert run.result["failed_partitions"] == ["a", "b"]
    for name in ("a", "b"):
        failed = job(run, name)
        assert (failed.error_type, failed.error_message) == ("PermissionError", "context fails")
        assert failed.error_function == "context"


def test_every_partition_of_a_batch_lands_as_the_source_had_it_and_logs_are_masked(
    source_connector, source, requests, execute
):
    for name in ("x", "y", "z"):
        source.set(name, "v1", leak=True)
    run = ingest_run(source_connector, execute)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert requests == [["x", "y", "z"]]
    for partition in Partition.objects.filter(connector=source_connector):
        path = storage.absolute_path(partition.storage_path)
        # Masking is for what people see, never for data.
        assert pq.read_table(path).column("token").to_pylist() == [SECRET]
    run.refresh_from_db()
    assert "token ****" in run.logs and SECRET not in run.logs, run.logs


def test_each_partition_of_a_batch_keeps_its_own_schema(
    source_connector, source, requests, execute
):
    source.set("narrow", "v1", rows=2)
    source.set("wide", "v1", wide=True)
    run = ingest_run(source_connector, execute)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert requests == [["narrow", "wide"]]
    narrow = Partition.objects.get(name="narrow")
    wide = Partition.objects.get(name="wide")
    assert [column["name"] for column in narrow.schema] == ["name", "fingerprint", "i"]
    assert [column["name"] for column in wide.schema] == ["when", "amount"]
    assert wide.schema[0]["type"].startswith("timestamp")
    table = pq.read_table(storage.absolute_path(wide.storage_path))
    assert table.column("amount").to_pylist() == [1.5]
    assert pq.read_table(storage.absolute_path(narrow.storage_path)).num_rows == 2
