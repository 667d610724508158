"""Execute one ingest run: list, validate, plan, read partitions in parallel, commit, delete.

The public entry points are in runs.services (`ingest_enqueue`, `ingest_execute`, ...); this
module is the executor behind `ingest_execute`.

Threads and the database: at most INGEST_CONCURRENCY sandbox reads run at once (read slots).
Each pool task is one sandbox request (`full_table=True`) that reads a *batch* of partitions in
one sandboxed child; the task then gives its read slot back and writes each partition's Arrow
table to its own Parquet file (staged, then fsynced and renamed together: runs.storage) while
another task reads. Pool threads never touch the database: the calling thread alone claims,
commits, heartbeats and polls for cancellation, so one run is one database writer
(SQLite-friendly) and a run works inside a test transaction.

Batches: a sandbox request costs tens of milliseconds of forks and namespaces, far more than
reading a small partition, so partitions are read in batches (`BatchSizer`). The first requests
read one partition each; later batches are sized from the seconds and bytes per partition seen
so far to take about BATCH_TARGET_S (at most a quarter of INGEST_TIMEOUT_S) and return about
BATCH_TARGET_BYTES, capped by INGEST_BATCH_SIZE and by an even share of what is left (every
reader stays busy to the end). Slow or large partitions therefore keep being read one at a
time. Every partition keeps its own job, status, rows, bytes, error and Parquet file, and a
reader exception fails only its partition.
- A batch that fails as a whole at the process level (RETRY_SINGLY: timeout, crash, memory or
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

Order of effects for each read partition: Parquet file fsynced and renamed into place ->
Partition row committed (update or create on (connector, name)) -> the file it replaced
removed. Deletions of
vanished partitions run after all reads: rows deleted and committed, then files removed.
Completed reads are committed in small batches (whatever finished since the last commit, one
transaction), which keeps the per-partition crash guarantee: a partition is either committed
with its file in place or not committed at all.

Stopping: the run's `cancel` event is set when someone requests a cancel (polled every TICK_S),
when the process is told to stop (STOP, set by the worker command on SIGTERM) or when this
thread is interrupted. The event kills every running sandbox child at once; what was committed
stays. A cancel ends the run "cancelled"; a stop or a crash ends it "interrupted".
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from connections.models import Connector
from connections.services import connector_environment_ensure
from connector_engine.environments.store import ReadyEnvironment
from connector_engine.ingest.planner import (
    CommittedState,
    ListedLeaf,
    PartitionPlan,
    PlannedRead,
    leaves_from_listing,
    partition_plan,
)
from connector_engine.protocol import (
    PROCESS_FAILURES,
    IngestEngine,
    Limits,
    SandboxRequest,
    SandboxResult,
    make_error,
)
from connector_engine.sandbox.supervisor import MAX_RESULT_BYTES
from connectors_site import engine_config
from runs import services, storage
from runs.models import ERROR_FIELDS, JobAction, JobStatus, Partition, PartitionJob, Run, RunStatus

logger = logging.getLogger(__name__)

TICK_S = 0.2  # how often the executing thread checks for cancel and writes progress
MAX_JOB_LOG_CHARS = 20_000
MAX_RUN_LOG_CHARS = 1_000_000
MAX_PLAN_NAMES = 1000  # names kept per list (read/skip/delete) in run.result["plan"]
MAX_STORED_PROBLEMS = 200
MAX_FAILED_NAMES = 1000
BATCH_TARGET_S = 2.0  # how long one batch should take: progress and redone work stay small
BATCH_TARGET_BYTES = MAX_RESULT_BYTES // 8  # a batch's tables, far below the result cap

# Set by the worker command on SIGTERM/SIGINT: running ingests stop at once (interrupted).
STOP = threading.Event()


def executor_identity() -> str:
    """Return "host:pid" of this process, recorded on the runs it executes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def connector_request(
    connector: Connector,
    action: str,
    *,
    limits: Limits,
    object: dict[str, Any] | None = None,
    objects: list[dict[str, Any]] | None = None,
    full_table: bool = False,
    credentials: str | None = None,
) -> SandboxRequest:
    """Build a sandbox request for a saved connector's code."""
    return SandboxRequest(
        action=action,
        code=connector.code,
        library_code=connector.connection.library_code,
        interface=connector.interface,
        parser=connector.parser or None,
        credentials=(
            connector.connection.decrypted_credentials() if credentials is None else credentials
        ),
        object=object,
        objects=objects,
        limits=limits,
        full_table=full_table,
    )


# ---------------------------------------------------------------- listing and plan


@dataclass
class ListingOutcome:
    """Every leaf of a connector, or why the listing cannot be trusted for an ingest."""

    ok: bool
    leaves: list[ListedLeaf] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    truncated: bool = False
    error: dict[str, Any] | None = None
    logs: str = ""
    isolation: str = ""
    duration_ms: int = 0

    def stop_error(self) -> dict[str, Any] | None:
        """Return the error that stops an ingest before anything is written, or None."""
        if self.error is not None:
            return self.error
        if self.problem_count:
            first = self.problems[0]["message"] if self.problems else "see the problems"
            return make_error(
                "ValidationError",
                f"list_objects yielded {self.problem_count} invalid object(s), e.g. {first}; "
                "nothing was read or deleted: fix the listing and run again",
            )
        if self.truncated:
            return make_error(
                "ListingTruncated",
                f"The listing stopped at a limit ({settings.INGEST_MAX_OBJECTS} objects or "
                "the nesting depth), so vanished partitions cannot be told apart from unlisted "
                "ones; nothing was read or deleted. Raise INGEST_MAX_OBJECTS or list fewer "
                "objects.",
            )
        return None

    def summary(self) -> dict[str, Any]:
        """Return the JSON kept on the run: counts and the (first) problems."""
        return {
            "leaves": len(self.leaves),
            "problems": self.problems[:MAX_STORED_PROBLEMS],
            "problem_count": self.problem_count,
            "truncated": self.truncated,
            "duration_ms": self.duration_ms,
        }


def list_leaves(
    connector: Connector,
    *,
    cancel: threading.Event | None = None,
    credentials: str | None = None,
    environment: ReadyEnvironment | None = None,
) -> ListingOutcome:
    """List every leaf of a connector in the sandbox (validated by the child's listing)."""
    request = connector_request(
        connector, "list", limits=engine_config.listing_limits(), credentials=credentials
    )
    result = services.execute(request, cancel=cancel, environment=environment)
    listed = result.result if isinstance(result.result, dict) else {}
    problems = list(listed.get("problems") or ())
    outcome = ListingOutcome(
        ok=result.ok,
        problems=problems,
        problem_count=len(problems) + int(listed.get("problems_omitted") or 0),
        truncated=bool(listed.get("truncated")),
        error=result.error if not result.ok else None,
        logs=result.logs,
        isolation=result.isolation,
        duration_ms=result.duration_ms,
    )
    if result.ok:
        outcome.leaves = leaves_from_listing(listed)
    return outcome


def committed_state(connector: Connector) -> tuple[dict[str, CommittedState], dict[str, str]]:
    """Return the committed partitions as {name: state} and {name: storage path}."""
    states: dict[str, CommittedState] = {}
    paths: dict[str, str] = {}
    rows = Partition.objects.filter(connector=connector).values_list(
        "name", "fingerprint", "code_fingerprint", "storage_path"
    )
    for name, fingerprint, code_fp, path in rows.iterator(chunk_size=5000):
        states[name] = CommittedState(fingerprint, code_fp)
        paths[name] = path
    return states, paths


@dataclass
class IngestPlan:
    """What the next ingest would do: the plan, or why an ingest would stop before writing."""

    listing: ListingOutcome
    plan: PartitionPlan | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None

    @property
    def error(self) -> dict[str, Any] | None:
        return self.listing.stop_error()

    def to_dict(self, max_names: int | None = MAX_PLAN_NAMES) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "plan": self.plan.to_dict(max_names=max_names) if self.plan is not None else None,
            "error": self.error,
            "listing": self.listing.summary(),
            "logs": self.listing.logs,
        }


def plan_connector(connector: Connector) -> IngestPlan:
    """List a connector and compare with its committed partitions (writes nothing)."""
    environment = connector_environment_ensure(connector=connector)
    if not environment.ok:
        error = make_error("EnvironmentError", environment.error)
        return IngestPlan(ListingOutcome(ok=False, error=error, logs=environment.log or ""))
    listing = list_leaves(connector, environment=environment.ready)
    if listing.stop_error() is not None:
        return IngestPlan(listing)
    committed, _ = committed_state(connector)
    plan = partition_plan(listing.leaves, committed, connector.code_fingerprint)
    return IngestPlan(listing, plan)


# ---------------------------------------------------------------- partition reads


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
    """What one pool task produced: its partitions' outcomes and what the sandbox cost."""

    partitions: list[PartitionOutcome]
    logs: str = ""  # a batch's own output (not split per partition)
    read_s: float = 0.0  # seconds spent in sandbox requests
    table_bytes: int = 0  # Arrow IPC bytes those requests returned

    def log_header(self) -> str:
        names = [outcome.name for outcome in self.partitions]
        shown = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
        return f"partitions {shown} (a batch of {len(names)})"


class BatchSizer:
    """How many partitions the next sandbox request reads (see the module docstring)."""

    def __init__(self, limit: int, readers: int, timeout_s: float) -> None:
        self.limit = max(1, limit)
        self.readers = max(1, readers)
        self.target_s = min(BATCH_TARGET_S, timeout_s / 4)
        self.partitions = 0
        self.seconds = 0.0
        self.bytes = 0

    def record(self, batch: BatchOutcome) -> None:
        self.partitions += len(batch.partitions)
        self.seconds += batch.read_s
        self.bytes += batch.table_bytes

    def next_size(self, remaining: int) -> int:
        """Return the next batch's size: 1 until something was measured."""
        if not self.partitions:
            return 1
        by_time = self.target_s * self.partitions / max(self.seconds, 1e-6)
        by_bytes = BATCH_TARGET_BYTES * self.partitions / max(self.bytes, 1)
        share = math.ceil(remaining / self.readers)
        return max(1, min(self.limit, share, int(by_time), int(by_bytes)))


class LogCollector:
    """The run's logs: each section under a header, cut at a size with a marker."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, header: str, text: str) -> None:
        if not text:
            return
        section = f"--- {header} ---\n{text.rstrip()}\n"
        room = self.limit - self.size
        if room <= 0:
            self.dropped += len(section)
            return
        self.parts.append(section[:room])
        self.size += min(len(section), room)
        self.dropped += max(len(section) - room, 0)

    def text(self) -> str:
        marker = f"\n[logs cut: {self.dropped} more characters not shown]" if self.dropped else ""
        return "".join(self.parts) + marker


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[cut]"


class IngestExecution:
    """One claimed ingest run, executed by the calling thread plus a pool of readers."""

    def __init__(self, run: Run, *, stop: threading.Event | None = None) -> None:
        self.run = run
        self.connector = run.connector
        self.stop = stop or STOP
        self.cancel = threading.Event()
        self.cancelled_by: str | None = None  # "cancel" (requested) or "stop" (worker stopping)
        self.logs = LogCollector(MAX_RUN_LOG_CHARS)
        self.limits = engine_config.ingest_limits()
        self.credentials = self.connector.connection.decrypted_credentials()
        self.environment: ReadyEnvironment | None = None  # resolved (built) when the run starts
        # A pool thread holds a read slot only while its sandbox request runs, so one thread
        # writes Parquet while another reads: INGEST_CONCURRENCY reads plus as many writes.
        self.read_slots = threading.BoundedSemaphore(settings.INGEST_CONCURRENCY)
        self.pool = ThreadPoolExecutor(
            max_workers=2 * settings.INGEST_CONCURRENCY, thread_name_prefix="ingest-read"
        )
        self.last_heartbeat = time.monotonic()
        self.last_cancel_check = 0.0
        self.failed_names: list[str] = []
        self.read_count = 0
        self.started = time.monotonic()

    # ------------------------------------------------------------ lifecycle

    def execute(self) -> Run:
        """Run the ingest to its end; never leaves the run "running" when it returns."""
        try:
            self._execute()
        except BaseException as exc:
            self.cancel.set()  # kill whatever is still running in the sandbox
            self.pool.shutdown(wait=True, cancel_futures=True)
            if isinstance(exc, Exception):
                logger.exception("ingest run %s failed", self.run.pk)
                error = make_error("InternalError", f"The ingest failed: {exc!r}")
                error["traceback"] = traceback.format_exc()
                self._finish(RunStatus.FAILED, error)
                return self.run
            self._finish(RunStatus.INTERRUPTED, _interrupted_error(type(exc).__name__))
            raise
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return self.run

    def _execute(self) -> None:
        run, connector = self.run, self.connector
        if not run.dry_run:
            # This run is the connector's only active ingest: whatever a crashed run left
            # behind (temporary files, written but never committed files) can go.
            keep = set(
                Partition.objects.filter(connector=connector).values_list("storage_path", flat=True)
            )
            storage.sweep_connector_directory(connector.pk, keep)
        environment = connector_environment_ensure(connector=connector)
        run.parameters = {**run.parameters, "environment": environment.key}
        if not environment.ok:
            error = make_error("EnvironmentError", environment.error)
            error["traceback"] = environment.log or ""  # pip's build log
            return self._finish(RunStatus.FAILED, error)
        self.environment = environment.ready
        listing = self._wait(
            self.pool.submit(
                list_leaves,
                connector,
                cancel=self.cancel,
                credentials=self.credentials,
                environment=self.environment,
            )
        )
        self.logs.add("list_objects", listing.logs)
        run.isolation = listing.isolation
        run.result = {"dry_run": run.dry_run, "listing": listing.summary()}
        if self.cancel.is_set():
            return self._finish_stopped()
        stop_error = listing.stop_error()
        if stop_error is not None:
            return self._finish(RunStatus.FAILED, stop_error)
        committed, paths = committed_state(connector)
        plan = partition_plan(listing.leaves, committed, run.code_fingerprint)
        run.result["plan"] = plan.to_dict(max_names=MAX_PLAN_NAMES)
        run.partitions_skipped = len(plan.skip)
        if run.dry_run:
            return self._finish(RunStatus.SUCCEEDED)
        read_jobs, delete_jobs = self._create_jobs(plan)
        self.read_count = len(read_jobs)
        run.partitions_total = len(read_jobs) + len(delete_jobs)
        run.save(update_fields=["result", "isolation", "partitions_total", "partitions_skipped"])
        reads = list(zip(plan.read, read_jobs, strict=True))
        if run.engine == IngestEngine.SPARK:
            self._read_on_spark(reads, paths)
        else:
            self._read_all(reads, paths)
        if self.cancel.is_set():
            return self._finish_stopped()
        self._delete_all(list(zip(plan.delete, delete_jobs, strict=True)), paths)
        if self.failed_names:
            return self._finish(RunStatus.FAILED, self._failed_error())
        self._finish(RunStatus.SUCCEEDED)

    def _create_jobs(self, plan: PartitionPlan) -> tuple[list[int], list[int]]:
        """Record one pending job per partition to read or delete; return their ids in order."""
        reads = [
            PartitionJob(
                run=self.run,
                name=p.name,
                fingerprint=p.fingerprint,
                action=JobAction.READ,
                reason=p.reason,
            )
            for p in plan.read
        ]
        deletes = [
            PartitionJob(run=self.run, name=name, action=JobAction.DELETE, reason="vanished")
            for name in plan.delete
        ]
        created = PartitionJob.objects.bulk_create(reads + deletes, batch_size=500)
        ids = [job.pk for job in created]
        if None in ids:  # backends that cannot return ids from bulk inserts
            jobs = PartitionJob.objects.filter(run=self.run).order_by("id")
            ids = list(jobs.values_list("id", flat=True))
        return ids[: len(reads)], ids[len(reads) :]

    # ------------------------------------------------------------ reads

    def _read_all(self, reads: list[tuple[PlannedRead, int]], paths: dict[str, str]) -> None:
        """Read partitions in batches, at most 2 x INGEST_CONCURRENCY batches in flight; commit
        each batch as it ends."""
        queue = deque(reads)
        sizer = BatchSizer(
            settings.INGEST_BATCH_SIZE, settings.INGEST_CONCURRENCY, self.limits.timeout_s
        )
        in_flight: set[Future[BatchOutcome]] = set()
        window = 2 * settings.INGEST_CONCURRENCY  # keeps every reader busy during commits
        while True:
            if not self.cancel.is_set():
                dispatched = []
                while len(in_flight) < window and queue:
                    size = min(sizer.next_size(len(queue)), len(queue))
                    batch = [queue.popleft() for _ in range(size)]
                    in_flight.add(self.pool.submit(self._read_batch, batch))
                    dispatched += [job_id for _, job_id in batch]
                if dispatched:
                    PartitionJob.objects.filter(pk__in=dispatched).update(status=JobStatus.RUNNING)
            if not in_flight:
                break
            done, in_flight = wait(in_flight, timeout=TICK_S, return_when=FIRST_COMPLETED)
            batches = [future.result() for future in done]
            for batch in batches:
                sizer.record(batch)
            if batches:
                self._commit_reads(batches, paths)
            self._tick()
        if self.cancel.is_set():
            PartitionJob.objects.filter(
                run=self.run, status__in=(JobStatus.PENDING, JobStatus.RUNNING)
            ).update(status=JobStatus.CANCELLED, finished_at=timezone.now())

    def _read_on_spark(self, reads: list[tuple[PlannedRead, int]], paths: dict[str, str]) -> None:
        """Read every partition as one Spark job (runs.spark_ingest), then commit them."""
        from runs.spark_ingest import SparkReads

        if not reads:
            return
        job_ids = [job_id for _, job_id in reads]
        PartitionJob.objects.filter(pk__in=job_ids).update(status=JobStatus.RUNNING)
        batch = self._wait(self.pool.submit(SparkReads(self).read, reads))
        self._commit_reads([batch], paths)

    def _read_batch(self, reads: list[tuple[PlannedRead, int]]) -> BatchOutcome:
        """Read a batch of partitions and write each (pool thread; no DB); never raise."""
        try:
            return self._read_and_write(reads)
        except Exception as exc:
            error = make_error("InternalError", f"Reading the partitions failed: {exc!r}")
            error["traceback"] = traceback.format_exc()
            return BatchOutcome(
                [
                    PartitionOutcome(j, p.name, p.fingerprint, ok=False, error=error)
                    for p, j in reads
                ]
            )

    def _read_and_write(self, reads: list[tuple[PlannedRead, int]]) -> BatchOutcome:
        """Read a batch of partitions in one sandbox request and write each."""
        if len(reads) == 1:
            return self._read_alone(*reads[0])
        started = time.monotonic()
        result = self._sandbox_read(objects=[planned.metadata for planned, _ in reads])
        batch = BatchOutcome([], result.logs, result.duration_ms / 1000, len(result.table or b""))
        pairs = result.batch() if result.ok else None
        if pairs is None or len(pairs) != len(reads):
            error = result.error or make_error("SandboxError", "The batch returned no items.")
            if error.get("type") not in PROCESS_FAILURES:  # the same for every partition
                batch.partitions = [
                    PartitionOutcome(job_id, p.name, p.fingerprint, ok=False, error=error)
                    for p, job_id in reads
                ]
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
            error = item.get("error") or make_error("SandboxError", "The read failed.")
            if not item.get("ok") and error.get("type") == "MemoryLimit":
                self._add_alone(batch, planned, job_id)  # earlier items held memory too
                continue
            outcome = PartitionOutcome(job_id, planned.name, planned.fingerprint, ok=False)
            if item.get("ok"):
                tables.append((outcome, table))
            else:
                outcome.error = error
            read_together.append(outcome)
        self._write(tables)
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
        """Read one partition in its own sandbox request and write it (pool thread; no DB)."""
        started = time.monotonic()
        outcome = PartitionOutcome(job_id, planned.name, planned.fingerprint, ok=False)
        result = self._sandbox_read(object=planned.metadata)
        outcome.logs = result.logs
        if not result.ok:
            outcome.error = result.error
        else:
            self._write([(outcome, result.table or b"")])
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return BatchOutcome([outcome], "", result.duration_ms / 1000, len(result.table or b""))

    def _sandbox_read(self, **leaves: Any) -> SandboxResult:
        """Read one leaf (`object`) or a batch (`objects`) in the sandbox, in a read slot."""
        request = connector_request(
            self.connector,
            "read",
            limits=self.limits,
            full_table=True,
            credentials=self.credentials,
            **leaves,
        )
        with self.read_slots:
            return services.execute(request, cancel=self.cancel, environment=self.environment)

    def _write(self, tables: list[tuple[PartitionOutcome, bytes]]) -> None:
        """Write partitions' Arrow IPC streams to their Parquet files; record the outcomes.

        Each file is staged, then all are published (fsynced, renamed) together.
        """
        staged = []
        for outcome, table in tables:
            if not table:
                outcome.error = make_error("SandboxError", "The read returned no table.")
                continue
            try:
                staged.append((outcome, storage.stage_partition(table, self.storage_path(outcome))))
            except Exception as exc:
                outcome.error = _write_error(exc)
        self.publish(staged)

    def storage_path(self, outcome: PartitionOutcome) -> str:
        """Where this run stores a partition's new file (relative to PARTITIONS_DIR)."""
        return storage.partition_storage_path(
            self.connector.pk, outcome.name, outcome.fingerprint, self.run.code_fingerprint
        )

    @staticmethod
    def publish(staged: list[tuple[PartitionOutcome, storage.StagedPartition]]) -> None:
        """Publish staged files together (fsync, rename); mark their outcomes written or failed."""
        try:
            written = storage.publish_partitions([item for _, item in staged])
        except Exception as exc:
            for outcome, _ in staged:
                outcome.error = _write_error(exc)
            return
        for (outcome, _), partition in zip(staged, written, strict=True):
            outcome.written, outcome.ok = partition, True

    def _commit_reads(self, batches: list[BatchOutcome], paths: dict[str, str]) -> None:
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
            self._commit_partitions(written, now, paths, replaced)
            _save_job_results(jobs)
            self._count(done=done, failed=failed, rows=rows, size=size)
        for path in replaced:
            storage.remove_partition_file(path)

    def _finished_job(self, outcome: PartitionOutcome, now: Any) -> PartitionJob:
        """Return the job of a finished read with its result fields set (not saved)."""
        job = PartitionJob(
            pk=outcome.job_id,
            duration_ms=outcome.duration_ms,
            logs=_cut(outcome.logs, MAX_JOB_LOG_CHARS),
            finished_at=now,
        )
        written = outcome.written
        if outcome.ok and written is not None:
            job.status = JobStatus.SUCCEEDED
            job.rows, job.bytes = written.rows, written.bytes
        else:
            error = outcome.error or make_error("SandboxError", "unknown failure")
            cancelled = self.cancel.is_set() and error.get("type") == "Cancelled"
            job.status = JobStatus.CANCELLED if cancelled else JobStatus.FAILED
            job.set_error(error)
        return job

    def _commit_partitions(
        self,
        written: list[tuple[PartitionOutcome, storage.WrittenPartition]],
        now: Any,
        paths: dict[str, str],
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
            if outcome.name not in paths or not rows.update(**values):
                created.append(Partition(connector=self.connector, name=outcome.name, **values))
            old = paths.get(outcome.name)
            if old and old != partition.storage_path:
                replaced.append(old)
            paths[outcome.name] = partition.storage_path
        Partition.objects.bulk_create(created, batch_size=500)

    # ------------------------------------------------------------ deletes

    def _delete_all(self, deletes: list[tuple[str, int]], paths: dict[str, str]) -> None:
        """Delete vanished partitions' rows (committed in chunks), then their files."""
        for start in range(0, len(deletes), 500):
            chunk = deletes[start : start + 500]
            names = [name for name, _ in chunk]
            with transaction.atomic():
                Partition.objects.filter(connector=self.connector, name__in=names).delete()
                PartitionJob.objects.filter(pk__in=[job_id for _, job_id in chunk]).update(
                    status=JobStatus.SUCCEEDED, finished_at=timezone.now(), duration_ms=0
                )
                self._count(done=len(chunk))
            for name in names:
                storage.remove_partition_file(paths.pop(name, ""))
            self._tick()

    # ------------------------------------------------------------ progress, cancel, finish

    def _count(self, *, done: int = 0, failed: int = 0, rows: int = 0, size: int = 0) -> None:
        """Add to the run's progress counters (in the caller's transaction)."""
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

    def _wait(self, future: Future) -> Any:
        """Wait for a pool future while keeping the heartbeat and the cancel check going."""
        while True:
            done, _ = wait([future], timeout=TICK_S)
            if done:
                return future.result()
            self._tick()

    def _tick(self) -> None:
        """Beat the heart when due, and turn a cancel request or a stop into the cancel event."""
        if self.cancel.is_set():
            return
        if self.stop.is_set():
            self.cancelled_by = "stop"
            self.cancel.set()
            return
        now = time.monotonic()
        if now - self.last_cancel_check < TICK_S:
            return
        self.last_cancel_check = now
        run = Run.objects.filter(pk=self.run.pk)
        if now - self.last_heartbeat >= settings.INGEST_HEARTBEAT_S:
            run.update(heartbeat_at=timezone.now())
            self.last_heartbeat = now
        if run.filter(cancel_requested_at__isnull=False).exists():
            self.cancelled_by = "cancel"
            self.cancel.set()

    def _finish_stopped(self) -> None:
        if self.cancelled_by == "stop":
            self._finish(RunStatus.INTERRUPTED, _interrupted_error("the worker was stopped"))
        else:
            self._finish(
                RunStatus.CANCELLED,
                make_error(
                    "Cancelled",
                    "The ingest was cancelled; running reads were killed. Partitions committed "
                    "before the cancel stay.",
                ),
            )

    def _failed_error(self) -> dict[str, Any]:
        names = self.failed_names
        shown = ", ".join(repr(name) for name in names[:10])
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        return make_error(
            "PartitionsFailed",
            f"{len(names)} of {self.read_count} partition read(s) failed: {shown}{more}. "
            "The others were committed; the next ingest reads only the failed ones again.",
        )

    def _finish(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Record the outcome; the conditional update never overwrites a finished run."""
        run = self.run
        now = timezone.now()
        result = dict(run.result or {})
        result["failed_partitions"] = self.failed_names[:MAX_FAILED_NAMES]
        result["failed_count"] = len(self.failed_names)
        error = error or {}
        fields = {
            "status": status,
            "parameters": run.parameters,
            "result": result,
            "logs": self.logs.text(),
            "isolation": run.isolation,
            "partitions_total": run.partitions_total,
            "partitions_skipped": run.partitions_skipped,
            **Run.error_fields(error),
            "finished_at": now,
            "heartbeat_at": now,
            "duration_ms": int((time.monotonic() - self.started) * 1000),
        }
        Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields)
        run.refresh_from_db()


_JOB_RESULT_FIELDS = [
    *("status", "rows", "bytes", "duration_ms", "logs", "finished_at"),
    *ERROR_FIELDS,
]


def _save_job_results(jobs: list[PartitionJob]) -> None:
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


def _write_error(exc: Exception) -> dict[str, Any]:
    """Return the error of a partition whose Parquet file could not be written."""
    if isinstance(exc, OSError):
        return make_error("StorageError", f"Writing the partition failed: {exc}")
    error = make_error("InternalError", f"Writing the partition failed: {exc!r}")
    error["traceback"] = "".join(traceback.format_exception(exc))
    return error


def _interrupted_error(why: str) -> dict[str, Any]:
    return make_error(
        "Interrupted",
        f"The ingest was interrupted ({why}). Partitions committed before that stay; the next "
        "ingest reads the rest.",
    )
