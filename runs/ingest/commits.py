"""Committing an ingest's work: partitions read, partitions deleted, job results, progress.

Only the executing thread commits (engines never touch the database), so one run is one
database writer (SQLite-friendly) and a run works inside a test transaction. The run is the
connector's only writer: its map of committed paths knows which partition rows exist.

Order of effects for each read partition: Parquet file fsynced and renamed into place (by the
engine) -> Partition row committed (update or create on (connector, name)) -> the file it
replaced removed. Completed reads are committed in small batches (whatever finished since the
last commit, one transaction), which keeps the per-partition crash guarantee: a partition is
either committed with its file in place or not committed at all. Deletions of vanished
partitions run after all reads: rows deleted and committed (in chunks), then files removed.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from connector_engine.ingest.run_logs import RunLogs
from connector_engine.output import cap_text
from connector_engine.protocol import ErrorType, error_type, make_error
from runs import storage
from runs.ingest.reads import BatchOutcome, PartitionOutcome
from runs.models import ERROR_FIELDS, JobStatus, Partition, PartitionJob, Run

MAX_JOB_LOG_BYTES = 20_000

_JOB_RESULT_FIELDS = [
    *("status", "rows", "bytes", "duration_ms", "logs", "finished_at"),
    *ERROR_FIELDS,
]


class RunProgress:
    """The run's progress counters and heartbeat, written by the executing thread."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.last_heartbeat = time.monotonic()

    def add(self, *, done: int = 0, failed: int = 0, rows: int = 0, size: int = 0) -> None:
        """Add to the counters (in the caller's transaction, with what they count)."""
        Run.objects.filter(pk=self.run.pk).update(
            partitions_done=F("partitions_done") + done,
            partitions_failed=F("partitions_failed") + failed,
            rows_written=F("rows_written") + rows,
            bytes_written=F("bytes_written") + size,
            heartbeat_at=timezone.now(),
        )
        self.run.partitions_done += done
        self.run.partitions_failed += failed
        self.run.rows_written += rows
        self.run.bytes_written += size
        self.last_heartbeat = time.monotonic()

    def beat(self) -> None:
        """Say the run is alive."""
        Run.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now())
        self.last_heartbeat = time.monotonic()


class IngestCommits:
    """Commits one run's finished reads and deletions (see the module docstring).

    `paths` is {name: storage path} of the committed partitions, kept up to date; `logs`
    collects the run's logs; a failed read whose error is "Cancelled" after `cancel` was set
    counts as cancelled, not failed.
    """

    def __init__(
        self,
        run: Run,
        *,
        paths: dict[str, str],
        progress: RunProgress,
        logs: RunLogs,
        cancel: threading.Event,
    ) -> None:
        self.run = run
        self.connector = run.connector
        self.paths = paths
        self.progress = progress
        self.logs = logs
        self.cancel = cancel
        self.failed_names: list[str] = []

    def commit_reads(self, batches: list[BatchOutcome]) -> None:
        """Commit finished reads in one transaction, then remove the files they replaced."""
        now = timezone.now()
        replaced: list[str] = []
        rows = size = failed = done = 0
        jobs: list[PartitionJob] = []
        written: list[tuple[PartitionOutcome, storage.WrittenPartition]] = []
        for batch in batches:
            self.logs.add(batch.log_header(), batch.logs)
            for outcome in batch.partitions:
                job = self._finished_job(outcome, now)
                jobs.append(job)
                if outcome.written is not None and job.status == JobStatus.SUCCEEDED:
                    written.append((outcome, outcome.written))
                    rows += outcome.written.rows
                    size += outcome.written.bytes
                elif job.status == JobStatus.FAILED:
                    failed += 1
                    self.failed_names.append(outcome.name)
                if outcome.logs:
                    self.logs.add(f"partition {outcome.name}", outcome.logs)
            done += len(batch.partitions)
        with transaction.atomic():
            self._commit_partitions(written, now, replaced)
            save_job_results(jobs)
            self.progress.add(done=done, failed=failed, rows=rows, size=size)
        for path in replaced:
            storage.remove_partition_file(path)

    def _finished_job(self, outcome: PartitionOutcome, now: datetime) -> PartitionJob:
        """Return the job of a finished read with its result fields set (not saved)."""
        job = PartitionJob(
            pk=outcome.job_id,
            duration_ms=outcome.duration_ms,
            logs=cap_text(outcome.logs, MAX_JOB_LOG_BYTES),
            finished_at=now,
        )
        written = outcome.written
        if outcome.ok and written is not None:
            job.status = JobStatus.SUCCEEDED
            job.rows, job.bytes = written.rows, written.bytes
        else:
            error = outcome.error or make_error(ErrorType.SANDBOX_ERROR, "unknown failure")
            cancelled = self.cancel.is_set() and error_type(error) == ErrorType.CANCELLED
            job.status = JobStatus.CANCELLED if cancelled else JobStatus.FAILED
            job.set_error(error)
        return job

    def _commit_partitions(
        self,
        written: list[tuple[PartitionOutcome, storage.WrittenPartition]],
        now: datetime,
        replaced: list[str],
    ) -> None:
        """Point the partitions' rows at their new files (inside the caller's transaction)."""
        created = []
        for outcome, partition in written:
            values = {
                "fingerprint": outcome.fingerprint,
                "code_fingerprint": self.run.code_fingerprint,
                "row_count": partition.rows,
                "bytes": partition.bytes,
                "schema": partition.schema,
                "storage_path": partition.storage_path,
                "run": self.run,
                "updated_at": now,
            }
            rows = Partition.objects.filter(connector=self.connector, name=outcome.name)
            # This run is the connector's only writer: `paths` knows which rows exist.
            if outcome.name not in self.paths or not rows.update(**values):
                created.append(Partition(connector=self.connector, name=outcome.name, **values))
            old = self.paths.get(outcome.name)
            if old and old != partition.storage_path:
                replaced.append(old)
            self.paths[outcome.name] = partition.storage_path
        Partition.objects.bulk_create(created, batch_size=500)

    def delete(self, deletes: list[tuple[str, int]]) -> None:
        """Delete vanished partitions' rows and finish their jobs (one transaction), then
        remove their files."""
        names = [name for name, _ in deletes]
        with transaction.atomic():
            Partition.objects.filter(connector=self.connector, name__in=names).delete()
            PartitionJob.objects.filter(pk__in=[job_id for _, job_id in deletes]).update(
                status=JobStatus.SUCCEEDED, finished_at=timezone.now(), duration_ms=0
            )
            self.progress.add(done=len(deletes))
        for name in names:
            storage.remove_partition_file(self.paths.pop(name, ""))


def save_job_results(jobs: list[PartitionJob]) -> None:
    """Save the result fields of finished jobs: one UPDATE run per job with executemany.

    bulk_update builds a CASE per field and job, which costs more than the read itself.
    """
    if not jobs:
        return
    meta = PartitionJob._meta
    fields = [meta.get_field(name) for name in _JOB_RESULT_FIELDS]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    params = [
        [field.get_db_prep_save(getattr(job, field.attname), connection) for field in fields]
        + [job.pk]
        for job in jobs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
