"""Ingest runs end to end: real sandbox, real Parquet, change detection by fingerprint."""

from __future__ import annotations

import pytest

from connector_engine.protocol import make_error
from runs import storage
from runs.ingest import services
from runs.ingest.execution import IngestExecution, ingest_claim
from runs.ingest.reads import BatchOutcome, PlannedJob, ReadContext
from runs.models import JobAction, JobStatus, Partition, PartitionJob, RunStatus
from tests.runs.ingest_helpers import assert_partitions_match_source, committed, ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


def jobs(run) -> dict[str, tuple[str, str, str]]:
    return {
        job.name: (job.action, job.reason, job.status)
        for job in PartitionJob.objects.filter(run=run)
    }


def test_it_reads_new_partitions_into_parquet(source_connector, source):
    source.set("a", "v1", rows=5)
    source.set("2024/b.csv", "v1", rows=2)
    source.set("2024/../../c", "v1", rows=0)
    run = ingest(source_connector)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_partitions_match_source(source_connector, source)
    assert run.partitions_total == run.partitions_done == 3
    assert run.rows_written == 7
    assert run.bytes_written == sum(p.bytes for p in Partition.objects.all()) > 0
    assert run.result["plan"]["counts"] == {"read": 3, "skip": 0, "delete": 0}
    assert {job[1] for job in jobs(run).values()} == {"new"}
    assert "reading a" in run.logs
    partition = Partition.objects.get(name="2024/../../c")
    path = storage.absolute_path(partition.storage_path)
    assert storage.partitions_root().resolve() in path.parents
    assert partition.run == run and partition.code_fingerprint == run.code_fingerprint
    assert run.code_version == source_connector.latest_version and run.inputs
    assert Partition.objects.get(name="a").schema[0] == {"name": "name", "type": "string"}
    # Where the time went, in order, within the run's duration.
    timings = run.result["timings_ms"]
    assert [name for name, _ in timings] == [
        "prepare", "list_and_plan", "jobs", "read_and_commit", "finish"
    ]  # fmt: skip
    assert all(ms >= 0 for _, ms in timings)
    assert sum(ms for _, ms in timings) <= run.duration_ms + 1


def test_it_reads_new_and_changed_skips_unchanged_and_deletes_vanished(source_connector, source):
    for name in ("keep", "change", "vanish"):
        source.set(name, "v1")
    first = ingest(source_connector)
    old_change = Partition.objects.get(name="change")
    old_vanish = Partition.objects.get(name="vanish")
    kept = Partition.objects.get(name="keep")

    source.set("change", "v2", rows=4)
    source.remove("vanish")
    source.set("new", "v1")
    run = ingest(source_connector)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result["plan"]["counts"] == {"read": 2, "skip": 1, "delete": 1}
    assert jobs(run) == {
        "change": (JobAction.READ, "fingerprint changed", JobStatus.SUCCEEDED),
        "new": (JobAction.READ, "new", JobStatus.SUCCEEDED),
        "vanish": (JobAction.DELETE, "vanished", JobStatus.SUCCEEDED),
    }
    assert run.partitions_skipped == 1 and run.partitions_done == 3
    assert_partitions_match_source(source_connector, source)
    assert not storage.absolute_path(old_change.storage_path).exists()
    assert not storage.absolute_path(old_vanish.storage_path).exists()
    unchanged = Partition.objects.get(name="keep")
    assert (unchanged.run_id, unchanged.updated_at) == (first.pk, kept.updated_at)


def test_it_reads_nothing_when_nothing_changed(source_connector, source):
    source.set("a", "v1")
    ingest(source_connector)
    run = ingest(source_connector)
    assert run.status == RunStatus.SUCCEEDED
    assert run.result["plan"]["counts"] == {"read": 0, "skip": 1, "delete": 0}
    assert run.partitions_total == 0 and not PartitionJob.objects.filter(run=run).exists()


def test_a_code_change_reads_every_partition_again(source_connector, source):
    source.set("a", "v1")
    source.set("b", "v1")
    ingest(source_connector)
    source_connector.code += "\n# a harmless change\n"
    source_connector.save()
    run = ingest(source_connector)
    assert run.result["plan"]["counts"] == {"read": 2, "skip": 0, "delete": 0}
    assert run.result["plan"]["read_reasons"] == {"connector code changed": 2}
    assert {job[1] for job in jobs(run).values()} == {"connector code changed"}
    assert set(Partition.objects.values_list("code_fingerprint", flat=True)) == {
        run.code_fingerprint
    }
    assert_partitions_match_source(source_connector, source)


def test_a_failing_partition_fails_alone_and_is_retried_alone(source_connector, source):
    source.set("good-1", "v1")
    source.set("bad", "v1", fail=True)
    source.set("good-2", "v1")
    run = ingest(source_connector)

    assert run.status == RunStatus.FAILED
    assert run.error_type == "PartitionsFailed"
    assert "'bad'" in run.error_message
    assert run.result["failed_partitions"] == ["bad"]
    assert run.partitions_failed == 1 and run.partitions_done == 3
    assert committed(source_connector) == {"good-1": "v1", "good-2": "v1"}
    failed = PartitionJob.objects.get(run=run, name="bad")
    assert failed.status == JobStatus.FAILED
    assert failed.error_type == "RuntimeError"
    assert failed.error_message == "cannot read bad"
    assert failed.error_function == "read_pandas_dataframe" and failed.error_line

    source.set("bad", "v1")  # fixed at the source
    retry = ingest(source_connector)
    assert retry.status == RunStatus.SUCCEEDED
    assert jobs(retry) == {"bad": (JobAction.READ, "failed last time", JobStatus.SUCCEEDED)}
    assert_partitions_match_source(source_connector, source)


def test_a_claimed_run_is_not_executed_twice(source_connector, source):
    source.set("a", "v1")
    run = ingest(source_connector)
    again = services.ingest_execute(run_id=run.pk)
    assert again.status == RunStatus.SUCCEEDED
    assert PartitionJob.objects.filter(run=run).count() == 1


def test_the_read_engine_gets_a_context_and_its_outcomes_are_committed(source_connector, source):
    source.set("a", "v1")
    source.set("b", "v1")
    contexts: list[ReadContext] = []

    class RefusingEngine:
        """Reads nothing: every partition fails with the same error."""

        def __init__(self, context: ReadContext) -> None:
            contexts.append(context)

        def batch_size(self, remaining: int) -> int:
            return remaining

        def read(self, reads: list[PlannedJob]) -> BatchOutcome:
            return BatchOutcome.failed(reads, make_error("NotRead", "refused"))

    run = services.ingest_create(connector=source_connector)
    run = ingest_claim(run_id=run.pk)
    run = IngestExecution(run, read_engine=RefusingEngine).execute()

    assert run.status == RunStatus.FAILED and run.error_type == "PartitionsFailed"
    assert {job.error_type for job in PartitionJob.objects.filter(run=run)} == {"NotRead"}
    assert not Partition.objects.exists()
    (context,) = contexts
    assert (context.run_id, context.connector_id) == (run.pk, source_connector.pk)
    assert context.code_fingerprint == run.code_fingerprint
    assert context.request.code == source_connector.code and context.request.credentials
    assert context.storage_path("a", "v1").startswith(f"{source_connector.pk}/")
