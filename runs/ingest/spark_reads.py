"""The Spark engine: a run's planned partitions read as one Spark job, written by Spark.

`SparkReads(context)` is the run's read engine when its engine is "spark". The connector is
wrapped as a Spark Python Data Source (connector_engine.spark.source): one Spark partition per
planned object; Spark's Python workers call the reader and yield Arrow batches; Spark writes
Parquet, partitioned by object, to a staging directory (connector_engine.spark.job); each
object's file is then moved (or uploaded) into runs.storage's store and committed by the
executor exactly as a sandbox read is (same Partition rows, same crash guarantees).

Decisions:
- The schema is taken before the job from a preview read of the first planned partitions in the
  sandbox (up to SCHEMA_SAMPLES tries), mapped to what Spark can hold (`spark_compatible`).
- One job reads every partition (`batch_size` is everything left). A failure of the job itself
  (a Python worker killed, the server gone, a cancel) fails every partition of the run with that
  error; nothing of this run is committed, earlier partitions stay.
- The session is one of the pool's (engine_config.spark_session_lease, as previews lease
  theirs), leased for the whole job and never stopped: stopping would close its id for good. A
  session the server closed meanwhile gets a new id and one retry; after a job that failed or
  was cancelled, everything the session still runs is interrupted before the slot is released.
  When every session stays leased for INGEST_TIMEOUT_S, the run fails with SparkBusy; a cancel
  ends that wait.
- The staging directory (SPARK_STAGING_DIR/<job name>) must be a path both this process and
  Spark see: on this machine by default; for SPARK_REMOTE, a shared mount. It is removed at the
  end.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
from django.conf import settings

from connector_engine.ingest.planner import PlannedRead
from connector_engine.protocol import ErrorType, error_type, make_error
from connector_engine.spark.job import (
    JobResult,
    SparkJob,
    SparkJobError,
    cancelled_error,
    spark_compatible,
)
from connector_engine.spark.server import SparkServerError
from connector_engine.spark.sessions import SessionLease, SessionPoolBusy
from connectors_site import engine_config
from runs import storage
from runs.ingest.reads import BatchOutcome, PartitionOutcome, PlannedJob, ReadContext, publish

SCHEMA_SAMPLES = 3  # planned partitions tried in the sandbox for the job's schema
LEASE_POLL_S = 1.0  # waiting for a free session, the cancel event is checked this often


class SparkReads:
    """Reads all planned partitions of a run as one Spark job (a pool thread; no DB)."""

    def __init__(self, context: ReadContext) -> None:
        self.context = context

    def batch_size(self, remaining: int) -> int:
        return remaining

    def read(self, reads: list[PlannedJob]) -> BatchOutcome:
        """Read and write every planned partition; never raise."""
        started = time.monotonic()
        outcomes = [PartitionOutcome(job, p.name, p.fingerprint, ok=False) for p, job in reads]
        logs = ""
        try:
            schema = self.job_schema([planned for planned, _ in reads])
            result = self.run_job(self.job([planned.metadata for planned, _ in reads], schema))
            where = engine_config.spark_status()["label"]
            logs = (
                f"[Spark job: {len(reads)} partition(s) read on {where} in {result.seconds:.1f} s]"
            )
            try:
                self.collect(outcomes, result, schema)
            finally:
                shutil.rmtree(result.staging, ignore_errors=True)
        except SparkJobError as exc:
            for outcome in outcomes:
                outcome.error = exc.error
        except Exception as exc:
            error = make_error(ErrorType.INTERNAL_ERROR, f"The Spark ingest failed: {exc!r}")
            for outcome in outcomes:
                outcome.error = error
        return BatchOutcome(outcomes, logs, time.monotonic() - started, 0)

    # ------------------------------------------------------------ schema

    def job_schema(self, planned: list[PlannedRead]) -> pa.Schema:
        """Return the Arrow schema (Spark-compatible) of the job, from a sandbox preview read."""
        problems = []
        for candidate in planned[:SCHEMA_SAMPLES]:
            result = self.context.sandbox(replace(self.context.request, object=candidate.metadata))
            if result.ok and result.table:
                return spark_compatible(pa.ipc.open_stream(result.table).schema)
            error = result.error or {}
            problems.append(f"{candidate.name!r}: {error.get('type')}: {error.get('message')}")
            if self.context.cancel.is_set():
                raise SparkJobError(cancelled_error())
        raise SparkJobError(
            make_error(
                ErrorType.SCHEMA_UNAVAILABLE,
                "The Spark job needs the partitions' columns before it starts, but no sample "
                f"read succeeded ({'; '.join(problems)})",
            )
        )

    # ------------------------------------------------------------ the job

    def job(self, objects: list[dict], schema: pa.Schema) -> SparkJob:
        """The run's job: every object, written under a staging directory of its own."""
        from connector_engine.spark.source import runtime_zip  # imports pyspark: only here

        name = f"connector_studio_run_{self.context.run_id}_{uuid.uuid4().hex[:8]}"
        environment = self.context.environment
        return SparkJob(
            name=name,
            request=replace(self.context.request, full_table=True, mask_data=False),
            objects=objects,
            schema=schema,
            staging=Path(settings.SPARK_STAGING_DIR) / name,
            runtime=runtime_zip(Path(settings.SPARK_DIR) / "artifacts"),
            python_paths=tuple(environment.python_paths) if environment else (),
        )

    def run_job(self, job: SparkJob) -> JobResult:
        """Run the job in a leased pooled session (see the module docstring)."""
        timeout = self.context.limits.timeout_s
        deadline = time.monotonic() + timeout
        while True:
            wait_s = max(min(LEASE_POLL_S, deadline - time.monotonic()), 0)
            try:
                lease_session = engine_config.spark_session_lease(
                    tenant=self.context.request.tenant, wait_timeout_s=wait_s
                )
                with lease_session as lease:
                    return self._run_leased(job, lease)
            except SparkServerError as exc:
                raise SparkJobError(make_error(ErrorType.SPARK_UNAVAILABLE, str(exc))) from None
            except SessionPoolBusy:
                if self.context.cancel.is_set():
                    raise SparkJobError(cancelled_error()) from None
                if time.monotonic() >= deadline:
                    message = f"Every pooled Spark session stayed in use for {timeout:g} s"
                    raise SparkJobError(make_error(ErrorType.SPARK_BUSY, message)) from None

    def _run_leased(self, job: SparkJob, lease: SessionLease) -> JobResult:
        cancel = self.context.cancel
        try:
            try:
                return job.run(lease.url, cancel)
            except SparkJobError as exc:
                if error_type(exc.error) != ErrorType.SPARK_SESSION_CLOSED:
                    raise
            lease.rotate()
            return job.run(lease.url, cancel)
        except SparkJobError:
            lease.interrupt_then_release()  # the server may still run what the job started
            raise

    # ------------------------------------------------------------ results

    def collect(self, outcomes: list[PartitionOutcome], job: JobResult, schema: pa.Schema) -> None:
        """Turn the job's reports and files into partition outcomes, files staged then
        published together."""
        masker = self.context.masker
        staged = []
        for index, outcome in enumerate(outcomes):
            report = masker.value(job.reports.get(index)) or {}
            outcome.logs = report.get("logs") or ""
            outcome.duration_ms = int(report.get("duration_ms") or 0)
            if not report:
                outcome.error = make_error(
                    ErrorType.SPARK_JOB_FAILED, "The job left no report for it."
                )
                continue
            if not report.get("ok"):
                outcome.error = report.get("error") or make_error(
                    ErrorType.SPARK_JOB_FAILED, "failed"
                )
                continue
            path = self.context.storage_path(outcome.name, outcome.fingerprint)
            try:
                item = stage(job.files.get(index, []), path, schema)
            except Exception as exc:
                outcome.error = make_error(
                    ErrorType.STORAGE_ERROR, f"Keeping its file failed: {exc!r}"
                )
                continue
            if item.written.rows != report.get("rows"):
                storage.discard_staged(item)
                outcome.error = make_error(
                    ErrorType.SPARK_JOB_FAILED,
                    f"Spark wrote {item.written.rows} rows for it, the reader gave "
                    f"{report.get('rows')}",
                )
                continue
            staged.append((outcome, item))
        publish(staged)


def stage(files: list[Path], path: str, schema: pa.Schema) -> storage.StagedPartition:
    """Stage one object's Spark-written file(s) at its storage path (none: an empty file)."""
    if len(files) == 1:
        return storage.stage_parquet_file(files[0], path)
    import pyarrow.parquet as pq

    tables = [pq.read_table(file) for file in files]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return storage.stage_table(table, path)
