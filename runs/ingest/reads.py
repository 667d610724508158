"""Reading planned partitions: the read-engine interface, and the sandbox engine.

An engine gets a ReadContext (what to read with, never the executor) and reads partitions in
the executor's pool threads: `batch_size(remaining)` says how many planned reads its next
`read(reads)` takes (0: none until a batch in flight ends), and `read` reads them, writes each
partition's Arrow table to its own Parquet file (staged, then published together:
runs.storage) and returns a BatchOutcome. Engines never touch the database and never raise;
the executor commits what they return (runs.ingest.commits). `SandboxReads` reads in sandboxed
children on this machine; `runs.ingest.spark_reads.SparkReads` reads everything as one Spark
job.

Sandbox batches (sized by connector_engine.ingest.batching): each `read` is one sandbox request
(`full_table=True`) that reads a batch of partitions in one sandboxed child, holding one of
`concurrency` read slots only while the request runs, so one thread writes Parquet while
another reads. Every partition keeps its own job, status, rows, bytes, error and Parquet file,
and a reader exception fails only its partition.
- A batch that fails as a whole at the process level (PROCESS_FAILURES: timeout, crash, memory or
  CPU limit, output too large, a sandbox failure) is read again one partition at a time, each
  with the normal limits, so only the partition that caused it fails. A batch item that ran out
  of memory is also read again alone (earlier items of the batch held memory too).
- A batch that fails as a whole for a reason every partition shares (a contract error,
  context() raising, a cancel) fails every partition of it with that error, without retries.
- Limits: a batch gets the limits of one partition read: INGEST_TIMEOUT_S, its CPU time, the
  memory limit and the output cap are shared by the batch. Batches are sized to take a small
  part of the timeout, so a batch that reaches it holds a partition far slower than the others;
  its partitions are then read singly, each with the full INGEST_TIMEOUT_S. A partition that
  hangs therefore costs up to twice INGEST_TIMEOUT_S before it fails, and the other partitions
  of its batch are read again.
- Logs: a batch's output cannot be told apart per partition, so it goes to the run's logs under
  the batch's first and last partition names; a job keeps its own logs only when it was read
  alone (the first reads, retries, slow partitions). A failed job always has its own error.
- Module state: partitions of one batch share the child process, so state a reader keeps in
  globals is seen by the next partition of the batch (as in one Python process reading many).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from connector_engine.environments.store import ReadyEnvironment
from connector_engine.ingest.batching import BatchSizer
from connector_engine.ingest.planner import PlannedRead
from connector_engine.masking import Masker
from connector_engine.protocol import (
    PROCESS_FAILURES,
    ErrorType,
    Limits,
    SandboxRequest,
    SandboxResult,
    error_type,
    make_error,
)
from runs import storage

# Runs one request in the sandbox, like runs.services.run_in_sandbox(request, cancel=...,
# environment=...).
Execute = Callable[..., SandboxResult]
# A planned partition and the id of its PartitionJob.
PlannedJob = tuple[PlannedRead, int]


@dataclass(frozen=True)
class ReadContext:
    """What an engine needs to read one run's partitions, and nothing of the executor.

    `request` is the connector's read request (its code, library, interface, parser and
    credentials, with the limits of one partition read); engines derive theirs from it.
    `cancel`, once set, kills every running read. `concurrency` is how many sandbox reads may
    run at once, `batch_size` how many partitions one sandbox request may read.
    """

    run_id: int
    connector_id: int
    code_fingerprint: str
    request: SandboxRequest
    cancel: threading.Event
    execute: Execute
    environment: ReadyEnvironment | None = None
    concurrency: int = 1
    batch_size: int = 1

    @property
    def masker(self) -> Masker:
        """Masks the connection's secrets in what people see of the reads (logs, errors)."""
        return Masker(self.request.credentials, secret_fields=self.request.secret_fields)

    @property
    def limits(self) -> Limits:
        return self.request.limits

    def sandbox(self, request: SandboxRequest) -> SandboxResult:
        """Run a request in the sandbox, in the run's environment; the cancel event kills it."""
        return self.execute(request, cancel=self.cancel, environment=self.environment)

    def storage_path(self, name: str, fingerprint: str) -> str:
        """Where this run stores a partition's new file (relative to the partitions store)."""
        return storage.partition_storage_path(
            self.connector_id, name, fingerprint, self.code_fingerprint
        )


@dataclass
class PartitionOutcome:
    """What reading one partition produced (built in a pool thread, committed by the caller)."""

    job_id: int
    name: str
    fingerprint: str
    ok: bool
    written: storage.WrittenPartition | None = None
    error: dict[str, Any] | None = None
    logs: str = ""  # only when read alone: a batch's logs belong to the batch
    duration_ms: int = 0  # in a batch: its share of the batch's read, plus its own write


@dataclass
class BatchOutcome:
    """What one `read` produced: its partitions' outcomes and what reading them cost."""

    partitions: list[PartitionOutcome]
    logs: str = ""  # a batch's own output (not split per partition)
    read_s: float = 0.0  # seconds spent in sandbox requests
    table_bytes: int = 0  # Arrow IPC bytes those requests returned

    def log_header(self) -> str:
        names = [outcome.name for outcome in self.partitions]
        shown = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
        return f"partitions {shown} (a batch of {len(names)})"

    @classmethod
    def failed(cls, reads: list[PlannedJob], error: dict[str, Any]) -> BatchOutcome:
        """Every partition of `reads` failed with the same error."""
        return cls(
            [PartitionOutcome(j, p.name, p.fingerprint, ok=False, error=error) for p, j in reads]
        )


class ReadEngine(Protocol):
    """Reads planned partitions and writes their files (pool threads; never the database)."""

    def batch_size(self, remaining: int) -> int:
        """How many of the `remaining` planned reads the next `read` should take."""
        ...

    def read(self, reads: list[PlannedJob]) -> BatchOutcome:
        """Read and write these partitions; never raise."""
        ...


class SandboxReads:
    """Reads batches of partitions in sandboxed children (see the module docstring)."""

    def __init__(self, context: ReadContext, *, sizer: BatchSizer | None = None) -> None:
        self.context = context
        self.sizer = sizer or BatchSizer(
            context.batch_size, context.concurrency, context.limits.timeout_s
        )
        self.sizing = threading.Lock()  # pool threads record, the executor asks for sizes
        self.read_slots = threading.BoundedSemaphore(context.concurrency)

    def batch_size(self, remaining: int) -> int:
        with self.sizing:
            return self.sizer.next_size(remaining)

    def read(self, reads: list[PlannedJob]) -> BatchOutcome:
        try:
            batch = self._read_and_write(reads)
        except Exception as exc:
            error = make_error(ErrorType.INTERNAL_ERROR, f"Reading the partitions failed: {exc!r}")
            error["traceback"] = traceback.format_exc()
            batch = BatchOutcome.failed(reads, error)
        with self.sizing:
            self.sizer.record(len(batch.partitions), batch.read_s, batch.table_bytes)
        return batch

    def _read_and_write(self, reads: list[PlannedJob]) -> BatchOutcome:
        """Read a batch of partitions in one sandbox request and write each."""
        if len(reads) == 1:
            return self._read_alone(*reads[0])
        started = time.monotonic()
        result = self._sandbox_read(objects=[planned.metadata for planned, _ in reads])
        batch = BatchOutcome([], result.logs, result.duration_ms / 1000, len(result.table or b""))
        pairs = result.batch() if result.ok else None
        if pairs is None or len(pairs) != len(reads):
            no_items = make_error(ErrorType.SANDBOX_ERROR, "The batch returned no items.")
            error = result.error or no_items
            if error_type(error) not in PROCESS_FAILURES:  # the same for every partition
                batch.partitions = BatchOutcome.failed(reads, error).partitions
                return batch
            batch.logs += (
                f"\n[the batch failed as a whole ({error.get('type')}: {error.get('message')}); "
                "its partitions were read again one at a time]"
            )
            for planned, job_id in reads:
                self._add_alone(batch, planned, job_id)
            return batch
        read_together: list[PartitionOutcome] = []
        tables: list[tuple[PartitionOutcome, bytes]] = []
        for (planned, job_id), (item, table) in zip(reads, pairs, strict=True):
            error = item.get("error") or make_error(ErrorType.SANDBOX_ERROR, "The read failed.")
            if not item.get("ok") and error_type(error) == ErrorType.MEMORY_LIMIT:
                self._add_alone(batch, planned, job_id)  # earlier items held memory too
                continue
            outcome = PartitionOutcome(job_id, planned.name, planned.fingerprint, ok=False)
            if item.get("ok"):
                tables.append((outcome, table))
            else:
                outcome.error = error
            read_together.append(outcome)
        write_tables(self.context, tables)
        share_ms = int((time.monotonic() - started) * 1000 / max(len(read_together), 1))
        for outcome in read_together:
            outcome.duration_ms = share_ms
        batch.partitions += read_together
        return batch

    def _add_alone(self, batch: BatchOutcome, planned: PlannedRead, job_id: int) -> None:
        """Read one partition of a batch again on its own and add it to the batch."""
        alone = self._read_alone(planned, job_id)
        batch.partitions += alone.partitions
        batch.read_s += alone.read_s
        batch.table_bytes += alone.table_bytes

    def _read_alone(self, planned: PlannedRead, job_id: int) -> BatchOutcome:
        """Read one partition in its own sandbox request and write it."""
        started = time.monotonic()
        outcome = PartitionOutcome(job_id, planned.name, planned.fingerprint, ok=False)
        result = self._sandbox_read(object=planned.metadata)
        outcome.logs = result.logs
        if not result.ok:
            outcome.error = result.error
        else:
            write_tables(self.context, [(outcome, result.table or b"")])
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return BatchOutcome([outcome], "", result.duration_ms / 1000, len(result.table or b""))

    def _sandbox_read(self, **leaves: Any) -> SandboxResult:
        """Read one leaf (`object`) or a batch (`objects`) in the sandbox, in a read slot."""
        # What an ingest lands is never masked (logs and errors are).
        request = replace(self.context.request, full_table=True, mask_data=False, **leaves)
        with self.read_slots:
            return self.context.sandbox(request)


def write_tables(context: ReadContext, tables: list[tuple[PartitionOutcome, bytes]]) -> None:
    """Write partitions' Arrow IPC streams to their Parquet files; record the outcomes.

    Each file is staged, then all are published (fsynced, renamed) together.
    """
    staged = []
    for outcome, table in tables:
        if not table:
            outcome.error = make_error(ErrorType.SANDBOX_ERROR, "The read returned no table.")
            continue
        path = context.storage_path(outcome.name, outcome.fingerprint)
        try:
            staged.append((outcome, storage.stage_partition(table, path)))
        except Exception as exc:
            outcome.error = write_error(exc)
    publish(staged)


def publish(staged: list[tuple[PartitionOutcome, storage.StagedPartition]]) -> None:
    """Publish staged files together (fsync, rename); mark their outcomes written or failed."""
    try:
        written = storage.publish_partitions([item for _, item in staged])
    except Exception as exc:
        for outcome, _ in staged:
            outcome.error = write_error(exc)
        return
    for (outcome, _), partition in zip(staged, written, strict=True):
        outcome.written, outcome.ok = partition, True


def write_error(exc: Exception) -> dict[str, Any]:
    """Return the error of a partition whose Parquet file could not be written."""
    if isinstance(exc, OSError):
        return make_error(ErrorType.STORAGE_ERROR, f"Writing the partition failed: {exc}")
    error = make_error(ErrorType.INTERNAL_ERROR, f"Writing the partition failed: {exc!r}")
    error["traceback"] = "".join(traceback.format_exception(exc))
    return error
