"""Scale-out ingest: an ingest's planned partitions read as one Spark job, written by Spark.

runs.ingest calls `SparkReads(execution).read(reads)` instead of its sandbox batches when the
run's engine is "spark". The connector is wrapped as a Spark Python Data Source
(connector_engine.spark.source): one Spark partition per planned object; Spark's Python workers call
the reader and yield Arrow batches; Spark writes Parquet, partitioned by object, to a staging
directory; each object's file is then moved into runs.storage's layout and committed by
runs.ingest exactly as a sandbox read is (same Partition rows, same crash guarantees).

Decisions:
- The schema is taken before the job from a preview read of the first planned partitions in the
  sandbox (up to SCHEMA_SAMPLES tries), mapped to Spark types (pyspark's Arrow mapping; naive
  timestamps stay naive) with every column nullable. Types Spark cannot hold (e.g. unsigned
  64-bit integers) fail the run before anything is read, with the column named. Spark's types are
  what gets written: timestamps in microseconds, where the normal path keeps pandas' nanoseconds.
- The job reads every partition once: the read is checkpointed locally (localCheckpoint), then
  its data rows are written and its report rows (one per object: ok, rows, error, logs) are
  collected from the checkpoint. A reader that raises fails its own partition only. The write
  runs in fewer tasks than objects (`write_tasks`): Spark's cost per task (tens of ms on a small
  machine) dominates small objects.
- A failure of the job itself (a Python worker killed, the server gone, a cancel) fails every
  partition of the run with that error; nothing of this run is committed, earlier partitions stay.
- Cancel: the job's operations carry a tag; the ingest's cancel event interrupts that tag.
- The staging directory (SPARK_STAGING_DIR/run-<id>-<random>) must be a path both this process
  and Spark see: on this machine by default; for SPARK_REMOTE, a shared mount. It is removed at
  the end.
- A session per ingest, released at the end (it is one session per run, not per preview).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from django.conf import settings

from connector_engine.ingest.planner import PlannedRead
from connector_engine.masking import Masker, remote_secrets
from connector_engine.protocol import make_error
from connector_engine.spark.connect import spark_session_class, without_jvm_trace
from connectors_site import engine_config
from runs import services, storage

if TYPE_CHECKING:
    from runs.ingest import BatchOutcome, IngestExecution

MIN_WRITE_TASKS = 4
OBJECTS_PER_WRITE_TASK = 16
SCHEMA_SAMPLES = 3
CANCEL_POLL_S = 0.25  # planned partitions tried in the sandbox for the job's schema


class SparkIngestError(Exception):
    """The Spark job could not run; `error` is the structured error for every partition."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


@dataclass
class JobResult:
    """What the Spark job left: per object index, its report and its Parquet files."""

    reports: dict[int, dict[str, Any]]
    files: dict[int, list[Path]]
    seconds: float
    staging: Path  # removed once the files are moved


class SparkReads:
    """Reads planned partitions through Spark for one ingest execution (a pool thread; no DB)."""

    def __init__(self, execution: IngestExecution) -> None:
        self.execution = execution
        self.connector = execution.connector
        self.run = execution.run
        self.cancel = execution.cancel
        self.credentials = execution.credentials

    def read(self, reads: list[tuple[PlannedRead, int]]) -> BatchOutcome:
        """Read and write every planned partition; never raise."""
        from runs.ingest import BatchOutcome, PartitionOutcome

        started = time.monotonic()
        outcomes = [PartitionOutcome(job, p.name, p.fingerprint, ok=False) for p, job in reads]
        logs = ""
        try:
            schema = self.job_schema([planned for planned, _ in reads])
            remote = engine_config.spark_remote()
            job = self.run_job(remote, [planned.metadata for planned, _ in reads], schema)
            where = engine_config.spark_status()["label"]
            logs = f"[Spark job: {len(reads)} partition(s) read on {where} in {job.seconds:.1f} s]"
            try:
                self.collect(outcomes, job, schema)
            finally:
                shutil.rmtree(job.staging, ignore_errors=True)
        except SparkIngestError as exc:
            for outcome in outcomes:
                outcome.error = exc.error
        except Exception as exc:
            error = make_error("InternalError", f"The Spark ingest failed: {exc!r}")
            for outcome in outcomes:
                outcome.error = error
        elapsed = time.monotonic() - started
        return BatchOutcome(outcomes, logs, elapsed, 0)

    # ------------------------------------------------------------ schema

    def job_schema(self, planned: list[PlannedRead]) -> pa.Schema:
        """Return the Arrow schema (Spark-compatible) of the job, from a sandbox preview read."""
        from runs.ingest import connector_request

        problems = []
        for candidate in planned[:SCHEMA_SAMPLES]:
            request = connector_request(
                self.connector,
                "read",
                limits=self.execution.limits,
                object=candidate.metadata,
                credentials=self.credentials,
            )
            result = services.execute(
                request, cancel=self.cancel, environment=self.execution.environment
            )
            if result.ok and result.table:
                return spark_compatible(pa.ipc.open_stream(result.table).schema)
            error = result.error or {}
            problems.append(f"{candidate.name!r}: {error.get('type')}: {error.get('message')}")
            if self.cancel.is_set():
                raise SparkIngestError(cancelled_error())
        raise SparkIngestError(
            make_error(
                "SchemaUnavailable",
                "The Spark job needs the partitions' columns before it starts, but no sample "
                f"read succeeded ({'; '.join(problems)})",
            )
        )

    # ------------------------------------------------------------ the job

    def payload(
        self, objects: list[dict[str, Any]], schema: pa.Schema, struct: Any
    ) -> dict[str, Any]:
        from runs.ingest import connector_request

        base = connector_request(
            self.connector,
            "read",
            limits=self.execution.limits,
            full_table=True,
            credentials=self.credentials,
        )
        environment = self.execution.environment
        return {
            "request": base.to_dict(),
            "objects": objects,
            "schema": schema.serialize().to_pybytes(),
            "spark_schema": struct.json(),
            "python_paths": list(environment.python_paths) if environment else [],
            "timeout_s": self.execution.limits.timeout_s,
        }

    def run_job(self, remote: str, objects: list[dict[str, Any]], schema: pa.Schema) -> JobResult:
        """Run the Spark job; return what it left in the staging directory."""
        from connector_engine.spark.source import (
            PARTITION_COLUMN,
            REPORT_COLUMN,
            data_source_class,
            runtime_zip,
        )

        started = time.monotonic()
        name = f"connector_studio_run_{self.run.pk}_{uuid.uuid4().hex[:8]}"
        staging = Path(settings.SPARK_STAGING_DIR) / name
        runtime = runtime_zip(Path(settings.SPARK_DIR) / "artifacts")
        session = spark_session_class().builder.remote(remote).create()
        done = threading.Event()
        watcher = threading.Thread(
            target=self._interrupt_on_cancel, args=(session, name, done), daemon=True
        )
        try:
            session.addTag(name)
            watcher.start()
            session.addArtifacts(str(runtime), pyfile=True)
            struct = spark_struct(schema)
            payload = self.payload(objects, schema, struct)
            session.dataSource.register(data_source_class(name, payload))
            frame = session.read.format(name).schema(struct).load()
            frame = frame.localCheckpoint()  # read once: rows and reports come from here
            report = frame[REPORT_COLUMN]
            rows = frame.where(report.isNull()).drop(REPORT_COLUMN)
            rows = rows.coalesce(write_tasks(len(objects)))
            rows.write.partitionBy(PARTITION_COLUMN).parquet(str(staging))
            reports = frame.where(report.isNotNull()).select(PARTITION_COLUMN, REPORT_COLUMN)
            found = reports.toArrow().to_pylist()
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if self.cancel.is_set():
                raise SparkIngestError(cancelled_error()) from None
            raise SparkIngestError(self.job_error(exc, remote)) from None
        finally:
            done.set()
            with contextlib.suppress(Exception):
                session.stop()
        files: dict[int, list[Path]] = {}
        for path in sorted(staging.glob(f"{PARTITION_COLUMN}=*/*.parquet")):
            index = int(path.parent.name.split("=", 1)[1])
            files.setdefault(index, []).append(path)
        return JobResult(
            reports={row[PARTITION_COLUMN]: json.loads(row[REPORT_COLUMN]) for row in found},
            files=files,
            seconds=time.monotonic() - started,
            staging=staging,
        )

    def _interrupt_on_cancel(self, session: Any, tag: str, done: threading.Event) -> None:
        """After a cancel, interrupt the job's operations until the job ends: an interrupt
        reaches only operations already running, and the next one may be starting."""
        while not done.wait(CANCEL_POLL_S):
            if self.cancel.is_set():
                with contextlib.suppress(Exception):
                    session.interruptTag(tag)

    def job_error(self, exc: Exception, remote: str) -> dict[str, Any]:
        """The error of a Spark job that failed as a whole, secrets masked, JVM trace cut."""
        message = without_jvm_trace(str(exc)).strip()
        masker = Masker(self.credentials, remote_secrets(remote))
        return make_error(
            "SparkJobFailed",
            masker.text(
                f"The Spark job failed, so no partition of this run was written: {message}"
            ),
        )

    # ------------------------------------------------------------ results

    def collect(self, outcomes: list[Any], job: JobResult, schema: pa.Schema) -> None:
        """Turn the job's reports and files into partition outcomes, files staged then
        published together."""
        masker = Masker(self.credentials)
        staged = []
        for index, outcome in enumerate(outcomes):
            report = masker.value(job.reports.get(index)) or {}
            outcome.logs = report.get("logs") or ""
            outcome.duration_ms = int(report.get("duration_ms") or 0)
            if not report:
                outcome.error = make_error("SparkJobFailed", "The job left no report for it.")
                continue
            if not report.get("ok"):
                outcome.error = report.get("error") or make_error("SparkJobFailed", "failed")
                continue
            path = self.execution.storage_path(outcome)
            try:
                item = self.stage(job.files.get(index, []), path, schema)
            except Exception as exc:
                outcome.error = make_error("StorageError", f"Keeping its file failed: {exc!r}")
                continue
            if item.written.rows != report.get("rows"):
                item.temp.unlink(missing_ok=True)
                outcome.error = make_error(
                    "SparkJobFailed",
                    f"Spark wrote {item.written.rows} rows for it, the reader gave "
                    f"{report.get('rows')}",
                )
                continue
            staged.append((outcome, item))
        self.execution.publish(staged)

    @staticmethod
    def stage(files: list[Path], path: str, schema: pa.Schema) -> storage.StagedPartition:
        """Stage one object's Spark-written file(s) at its storage path (empty: no file)."""
        if len(files) == 1:
            return storage.stage_parquet_file(files[0], path)
        import pyarrow.parquet as pq

        tables = [pq.read_table(file) for file in files]
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        return storage.stage_table(table, path)


def write_tasks(objects: int) -> int:
    """How many Spark tasks write the Parquet: about OBJECTS_PER_WRITE_TASK objects each.

    Each task still writes one file per object (an object's rows are in one read partition);
    fewer tasks than objects cut Spark's per-task cost, which dominates small objects.
    """
    return max(min(objects, MIN_WRITE_TASKS), math.ceil(objects / OBJECTS_PER_WRITE_TASK))


def spark_compatible(schema: pa.Schema) -> pa.Schema:
    """Map an Arrow schema to the Arrow form of the Spark types that hold it (all nullable)."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    fields = []
    for field in schema:
        try:
            struct = from_arrow_schema(pa.schema([field]), prefer_timestamp_ntz=True)
        except Exception as exc:
            raise SparkIngestError(
                make_error(
                    "SchemaNotSupported",
                    f"Column {field.name!r} has type {field.type}, which Spark cannot hold "
                    f"({exc}): convert it in the reader, or ingest without Spark",
                )
            ) from None
        fields.append(to_arrow_schema(struct).field(0).with_nullable(True))
    return pa.schema(fields)


def spark_struct(schema: pa.Schema) -> Any:
    """The Spark schema of the job: the data columns, then the hidden partition/report ones."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    from connector_engine.spark.source import PARTITION_COLUMN, REPORT_COLUMN

    data = from_arrow_schema(schema, prefer_timestamp_ntz=True)
    return StructType(
        [StructField(f.name, f.dataType, True) for f in data.fields]
        + [StructField(PARTITION_COLUMN, IntegerType(), True)]
        + [StructField(REPORT_COLUMN, StringType(), True)]
    )


def cancelled_error() -> dict[str, Any]:
    return make_error("Cancelled", "The ingest was cancelled; the Spark job was interrupted.")
