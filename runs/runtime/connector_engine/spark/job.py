"""An ingest's Spark job: planned partitions read by a Python Data Source, written by Spark.

Django-free. The trusted side (runs.ingest.spark_reads) samples the schema, leases a pooled
session and turns what the job leaves into committed partitions; this module runs the job on a
session and says what it left.

Decisions:
- The job's schema is mapped to Spark types (pyspark's Arrow mapping; naive timestamps stay
  naive) with every column nullable (`spark_compatible`). Types Spark cannot hold (e.g. unsigned
  64-bit integers) fail the run before anything is read, with the column named. Spark's types are
  what gets written: timestamps in microseconds, where the sandbox engine keeps pandas'
  nanoseconds.
- The job reads every partition once: the read is checkpointed locally (localCheckpoint), then
  its data rows are written and its report rows (one per object: ok, rows, error, logs) are
  collected from the checkpoint. A reader that raises fails its own partition only. The write
  runs in fewer tasks than objects (`write_tasks`): Spark's cost per task (tens of ms on a small
  machine) dominates small objects.
- A failure of the job itself (a Python worker killed, the server gone, a cancel) is a
  SparkJobError with one error for every partition; its message is masked and loses the JVM
  trace.
- Cancel: the job's operations carry a tag (the job's name); while the job runs, a set cancel
  event interrupts that tag.
- Sessions are pooled (connector_engine.spark.sessions): the job connects as the sandbox child
  does (`connect_spark`: a pooled session is reset first; one the server closed is reported as
  SparkSessionClosed so the caller can rotate its id) and releases without stopping it. The
  registered Data Source carries the credentials, so it is replaced by an empty one when the job
  ends: the session outlives the job and serves other connections later.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from connector_engine.child.spark_client import connect_spark, release_spark, without_jvm_trace
from connector_engine.masking import Masker, remote_secrets
from connector_engine.protocol import ErrorType, SandboxRequest, make_error
from connector_engine.user_code import ConnectorError

MIN_WRITE_TASKS = 4
OBJECTS_PER_WRITE_TASK = 16
CANCEL_POLL_S = 0.25
WATCHER_JOIN_S = 5.0


class SparkJobError(Exception):
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
    staging: Path  # the caller removes it once the files are moved


@dataclass(frozen=True)
class SparkJob:
    """One ingest's job: the objects to read with the connector's request, written to `staging`.

    `name` is the Data Source's name and the tag of the job's operations (unique per job);
    `request` is the connector's read request (full_table, no object); `schema` the Arrow schema
    every partition is cast to (from `spark_compatible`); `runtime` the engine's zip
    (connector_engine.spark.source.runtime_zip); `python_paths` the package environment's
    import path on Spark's workers.
    """

    name: str
    request: SandboxRequest
    objects: list[dict[str, Any]]
    schema: pa.Schema
    staging: Path
    runtime: Path
    python_paths: tuple[str, ...] = field(default=())

    def run(self, remote: str, cancel: threading.Event) -> JobResult:
        """Run the job on the session at `remote`; raise SparkJobError when it fails as a whole."""
        started = time.monotonic()
        try:
            session = connect_spark(remote)
        except ConnectorError as exc:
            raise SparkJobError(exc.to_dict()) from None
        except Exception as exc:
            raise SparkJobError(job_error(exc, self.request, remote)) from None
        try:
            found = self._read_and_write(session, cancel)
        except Exception as exc:
            shutil.rmtree(self.staging, ignore_errors=True)
            if cancel.is_set():
                raise SparkJobError(cancelled_error()) from None
            raise SparkJobError(job_error(exc, self.request, remote)) from None
        finally:
            release_spark(session, remote)
        return JobResult(
            reports=found,
            files=staged_files(self.staging),
            seconds=time.monotonic() - started,
            staging=self.staging,
        )

    def _read_and_write(self, session: Any, cancel: threading.Event) -> dict[int, dict[str, Any]]:
        """Read every object once, write the rows to staging; return the reports by index."""
        from connector_engine.spark.source import PARTITION_COLUMN, REPORT_COLUMN, data_source_class

        done = threading.Event()
        watcher = threading.Thread(
            target=interrupt_on_cancel, args=(session, self.name, cancel, done), daemon=True
        )
        session.addTag(self.name)
        watcher.start()
        try:
            session.addArtifacts(str(self.runtime), pyfile=True)
            struct = spark_struct(self.schema)
            session.dataSource.register(data_source_class(self.name, self.payload(struct)))
            frame = session.read.format(self.name).schema(struct).load()
            frame = frame.localCheckpoint()  # read once: rows and reports come from here
            report = frame[REPORT_COLUMN]
            rows = frame.where(report.isNull()).drop(REPORT_COLUMN)
            rows = rows.coalesce(write_tasks(len(self.objects)))
            rows.write.partitionBy(PARTITION_COLUMN).parquet(str(self.staging))
            reports = frame.where(report.isNotNull()).select(PARTITION_COLUMN, REPORT_COLUMN)
            found = reports.toArrow().to_pylist()
        finally:
            done.set()
            watcher.join(WATCHER_JOIN_S)  # no interrupt may hit the replacement below
            with contextlib.suppress(Exception):
                session.dataSource.register(data_source_class(self.name, {}))
        return {row[PARTITION_COLUMN]: json.loads(row[REPORT_COLUMN]) for row in found}

    def payload(self, struct: Any) -> dict[str, Any]:
        """What the Data Source's readers get (connector_engine.spark.source.data_source_class)."""
        return {
            "request": self.request.to_dict(),
            "objects": self.objects,
            "schema": self.schema.serialize().to_pybytes(),
            "spark_schema": struct.json(),
            "python_paths": list(self.python_paths),
            "timeout_s": self.request.limits.timeout_s,
        }


def interrupt_on_cancel(
    session: Any, tag: str, cancel: threading.Event, done: threading.Event
) -> None:
    """After a cancel, interrupt the job's operations until the job ends: an interrupt reaches
    only operations already running, and the next one may be starting."""
    while not done.wait(CANCEL_POLL_S):
        if cancel.is_set():
            with contextlib.suppress(Exception):
                session.interruptTag(tag)


def staged_files(staging: Path) -> dict[int, list[Path]]:
    """Return the Parquet files Spark wrote under `staging`, by object index."""
    from connector_engine.spark.source import PARTITION_COLUMN

    files: dict[int, list[Path]] = {}
    for path in sorted(staging.glob(f"{PARTITION_COLUMN}=*/*.parquet")):
        index = int(path.parent.name.split("=", 1)[1])
        files.setdefault(index, []).append(path)
    return files


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
    for field_ in schema:
        try:
            struct = from_arrow_schema(pa.schema([field_]), prefer_timestamp_ntz=True)
        except Exception as exc:
            raise SparkJobError(
                make_error(
                    ErrorType.SCHEMA_NOT_SUPPORTED,
                    f"Column {field_.name!r} has type {field_.type}, which Spark cannot hold "
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


def job_error(exc: Exception, request: SandboxRequest, remote: str) -> dict[str, Any]:
    """The error of a Spark job that failed as a whole, secrets masked, JVM trace cut."""
    message = without_jvm_trace(str(exc)).strip()
    masker = Masker(
        request.credentials, remote_secrets(remote), secret_fields=request.secret_fields
    )
    return make_error(
        ErrorType.SPARK_JOB_FAILED,
        masker.text(f"The Spark job failed, so no partition of this run was written: {message}"),
    )


def cancelled_error() -> dict[str, Any]:
    return make_error(
        ErrorType.CANCELLED, "The ingest was cancelled; the Spark job was interrupted."
    )
