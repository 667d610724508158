"""Scale-out ingest: a connector wrapped as a Spark Python Data Source. No Django import.

This module runs on both sides. The trusted side calls `data_source_class(name, payload)` to
build the source of one ingest and `runtime_zip(directory)` to package this runtime for Spark;
Spark's Python workers import this module from that zip (the ingest adds it to its Spark
session as a Python file artifact), so the same code runs on the local server and on a cluster
given by SPARK_REMOTE.

Decisions:
- One Spark partition (task) per planned object, in plan order. `read` loads the connector and
  reads its object exactly as the sandbox does (connector_engine.child: the same contract checks,
  the same conversion to Arrow, the same parsers); its rows are never masked (what an ingest
  lands is what the source had), its logs and errors are; a partition therefore holds the rows
  the normal path writes.
- One schema for the whole job (Spark needs it before reading): the trusted side passes it (in
  Arrow form, already mapped to what Spark can hold). Each partition's table is cast to it; a
  partition whose columns differ or cannot be cast fails with a SchemaMismatch.
- Results travel with the rows: every row carries PARTITION_COLUMN (the object's index) and
  REPORT_COLUMN (null on data rows). After its rows, each partition yields one report row (data
  columns null) holding {ok, rows, error, logs, duration_ms} as JSON. A connector that raises
  therefore fails its own partition, never the Spark job; the trusted side splits rows from
  reports.
- Limits: a wall-clock timeout per partition (SIGALRM in the worker's main thread raising
  ReadTimeout, a BaseException so `except Exception` in user code does not swallow it). There is
  no memory, CPU or process limit and no private filesystem here: the Spark workers are the
  isolation (the local server runs under bubblewrap; a cluster has its own). A reader that kills
  its Python worker (os._exit, a segfault) fails the Spark task and so the job.
- Output: what the connector writes to sys.stdout/sys.stderr while reading is captured (the first
  max_output_bytes, then the sandbox's "[output cut: ...]" marker), masked and returned in the
  report; writes straight to file descriptors 1 and 2 end in Spark's executor logs.
- Errors in reports have the engine's one shape (protocol.make_error).
- Packages: the payload's python_paths (the connection's package environment) are put in front
  of sys.path when they exist on the worker; on a cluster the packages must be installed there.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

from connector_engine import engine_sources, engine_version
from connector_engine.output import CappedOutput
from connector_engine.protocol import ErrorType, make_error

PARTITION_COLUMN = "__cs_partition"
REPORT_COLUMN = "__cs_report"
HIDDEN_COLUMNS = (PARTITION_COLUMN, REPORT_COLUMN)
BATCH_ROWS = 65_536  # rows per Arrow batch handed to Spark


class ReadTimeout(BaseException):
    """A partition read took longer than its timeout (raised by SIGALRM in user code)."""


class SchemaMismatch(Exception):
    """A partition's table does not fit the ingest's schema."""


# ---------------------------------------------------------------- the Data Source


class ConnectorDataSource(DataSource):
    """The connector of one ingest; subclassed per ingest with its payload (see below)."""

    source_name: ClassVar[str] = "connector_studio"
    payload: ClassVar[dict[str, Any]] = {}

    @classmethod
    def name(cls) -> str:
        return cls.source_name

    def schema(self) -> Any:
        from pyspark.sql.types import StructType

        return StructType.fromJson(json.loads(self.payload["spark_schema"]))

    def reader(self, schema: Any) -> DataSourceReader:
        return ConnectorReader(self.payload)


class ConnectorReader(DataSourceReader):
    """Partitions are the planned objects; `read` yields one object's rows, then its report."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def partitions(self) -> list[InputPartition]:
        return [InputPartition(index) for index in range(len(self.payload["objects"]))]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        yield from read_partition(self.payload, partition.value)


def data_source_class(name: str, payload: dict[str, Any]) -> type[ConnectorDataSource]:
    """Return a Data Source class for one ingest, registered in Spark under `name`.

    The payload rides in the class (pickled by value with it, because the class is created
    here), not in reader options, so credentials never appear in a query plan's text. Keys:
    request (SandboxRequest.to_dict() without the object), objects (leaf dicts in plan order),
    schema (Arrow schema bytes), spark_schema (StructType JSON, hidden columns included),
    python_paths, timeout_s.
    """
    attributes = {"source_name": name, "payload": payload, "__module__": __name__}
    return type(f"ConnectorDataSource_{name}", (ConnectorDataSource,), attributes)


# ---------------------------------------------------------------- reading one partition


def read_partition(payload: dict[str, Any], index: int) -> Iterator[pa.RecordBatch]:
    """Read the payload's object `index`; yield its rows, then its report row."""
    schema = pa.ipc.read_schema(pa.py_buffer(payload["schema"]))
    report, table = read_object(payload, index, schema)
    if table is not None:
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            yield with_hidden_columns(batch, index, None)
    empty = pa.RecordBatch.from_arrays([pa.nulls(1, field.type) for field in schema], schema=schema)
    yield with_hidden_columns(empty, index, json.dumps(report, default=str))


def read_object(
    payload: dict[str, Any], index: int, schema: pa.Schema
) -> tuple[dict[str, Any], pa.Table | None]:
    """Read one object as the sandbox child does; return (report, table or None).

    The report's logs and error are masked; the table is what the source had (an ingest's data
    is never masked).
    """
    from connector_engine.child import actions
    from connector_engine.masking import Masker
    from connector_engine.protocol import SandboxRequest

    for path in reversed(payload.get("python_paths") or []):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)
    request = SandboxRequest.from_dict(
        {**payload["request"], "object": payload["objects"][index], "objects": None}
    )
    masker = Masker(request.credentials, secret_fields=request.secret_fields)
    output = CapturedText(request.limits.max_output_bytes)
    timeout_s = float(payload.get("timeout_s") or 0)
    started = time.monotonic()
    try:
        with (
            contextlib.redirect_stdout(output),
            contextlib.redirect_stderr(output),
            deadline(timeout_s),
        ):
            outcome = actions.execute(request)
        ok, error, table = outcome.ok, outcome.error, outcome.table
    except ReadTimeout:  # the alarm rang between the reader's return and the deadline's end
        ok, error, table = False, None, None
    if not ok and (error is None or error.get("type") == ReadTimeout.__name__):
        error = timeout_error(timeout_s)
    if ok and table is not None:
        try:
            table = conform(table, schema)
        except SchemaMismatch as exc:
            ok, table = False, None
            error = make_error(ErrorType.SCHEMA_MISMATCH, str(exc))
    report = {
        "ok": ok and table is not None,
        "rows": table.num_rows if ok and table is not None else 0,
        "error": error if not ok else None,
        "logs": output.text(),
        "duration_ms": int((time.monotonic() - started) * 1000),
    }
    return masker.value(report), (table if report["ok"] else None)


def timeout_error(timeout_s: float) -> dict[str, Any]:
    """Return the error of a read stopped by its timeout."""
    return make_error(
        ErrorType.TIMEOUT, f"The read did not finish within {timeout_s:g} s and was stopped"
    )


@contextlib.contextmanager
def deadline(timeout_s: float) -> Iterator[None]:
    """Raise ReadTimeout in this (main) thread after timeout_s; no-op elsewhere or for 0."""
    if timeout_s <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise ReadTimeout(f"the read took longer than {timeout_s:g} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a partition's table to the ingest's schema; SchemaMismatch when it does not fit."""
    if table.column_names != schema.names:
        raise SchemaMismatch(
            f"Its columns {table.column_names} differ from the ingest's columns {schema.names} "
            "(taken from the first partition read): every partition of a Spark ingest must "
            "have the same columns"
        )
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaMismatch(
            f"Its column types ({describe_schema(table.schema)}) cannot be cast to the "
            f"ingest's ({describe_schema(schema)}): {exc}"
        ) from None


def describe_schema(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def with_hidden_columns(batch: pa.RecordBatch, index: int, report: str | None) -> pa.RecordBatch:
    """Append the partition index and the report (null on data rows) to a batch."""
    rows = batch.num_rows
    return pa.RecordBatch.from_arrays(
        [
            *batch.columns,
            pa.array([index] * rows, pa.int32()),
            pa.array([report] * rows, pa.string()),
        ],
        names=[*batch.schema.names, *HIDDEN_COLUMNS],
    )


class CapturedText(io.TextIOBase):
    """A text stream for sys.stdout/sys.stderr that keeps the first `limit` bytes written."""

    def __init__(self, limit: int) -> None:
        self.output = CappedOutput(limit)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.output.add(text.encode("utf-8", errors="backslashreplace"))
        return len(text)

    def text(self) -> str:
        """Return what was written, with the cut marker when some was cut."""
        return self.output.text()


# ---------------------------------------------------------------- shipping the runtime


def runtime_zip(directory: str | os.PathLike[str]) -> Path:
    """Return a zip of the engine package, as it is, for Spark's Python workers.

    Its name carries the engine's version (a hash of its sources), so a changed engine gets a new
    file. Written once per version, atomically.
    """
    target = Path(directory) / f"connector_engine_{engine_version()}.zip"
    if target.exists():
        return target
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in engine_sources():
            archive.write(path, name)
    os.replace(temp, target)
    return target
