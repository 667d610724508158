"""Execute one ingest run: claim it, plan, create its jobs, dispatch reads, delete, finish.

runs.ingest.services.ingest_execute claims a queued run (`ingest_claim`) and hands it to an
IngestExecution. The executing thread alone touches the database: it plans
(runs.ingest.planning), creates the partition jobs, hands planned reads to the run's read engine
(runs.ingest.reads; chosen by `run.engine`) in a pool of threads, commits what they return
(runs.ingest.commits), heartbeats, polls for cancellation and hands the run to an optional
`on_progress` callback (every TICK_S at most). At most 2 x INGEST_CONCURRENCY reads are in
flight, which keeps every reader busy during commits.

Stopping: the run's `cancel` event is set when someone requests a cancel (polled every TICK_S),
when the process is told to stop (STOP, set by the worker command on SIGTERM) or when this
thread is interrupted. The event kills every running sandbox child (or interrupts the Spark job)
at once; what was committed stays. A cancel ends the run "cancelled"; a stop or a crash ends it
"interrupted".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone

from connector_engine.ingest.planner import PartitionPlan
from connector_engine.ingest.run_logs import RunLogs
from connector_engine.protocol import Action, ErrorType, IngestEngine, make_error
from connectors_site import engine_config
from connectors_site.logs import run_logging, set_run_id
from environments.services import connector_environment_ensure
from runs import services, storage
from runs.ingest.commits import IngestCommits, RunProgress
from runs.ingest.planning import MAX_PLAN_NAMES, ingest_code, missing_reader_error, plan_ingest
from runs.ingest.reads import (
    BatchOutcome,
    Execute,
    PlannedJob,
    ReadContext,
    ReadEngine,
    SandboxReads,
)
from runs.ingest.spark_reads import SparkReads
from runs.models import JobAction, JobStatus, Partition, PartitionJob, Run, RunKind, RunStatus
from runs.services import connector_request
from runs.timing import PhaseTimer
from runs.workers import local_process_is_gone

logger = logging.getLogger(__name__)

TICK_S = 0.2  # how often the executing thread checks for cancel and writes progress
MAX_RUN_LOG_BYTES = 1_000_000
MAX_FAILED_NAMES = 1000
DELETE_CHUNK = 500

READ_ENGINES: dict[str, Callable[[ReadContext], ReadEngine]] = {
    IngestEngine.SANDBOX: SandboxReads,
    IngestEngine.SPARK: SparkReads,
}

# Set by the worker command on SIGTERM/SIGINT: running ingests stop at once (interrupted).
STOP = threading.Event()

T = TypeVar("T")


def executor_identity() -> str:
    """Return "host:pid" of this process, recorded on the runs it executes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def executor_is_gone(run: Run, now: datetime) -> bool:
    """Say whether the process executing a running ingest is dead."""
    if run.heartbeat_at is None:
        return True
    if (now - run.heartbeat_at).total_seconds() > settings.INGEST_STALE_AFTER_S:
        return True
    host, _, pid = run.executor.rpartition(":")
    # Another machine: only its heartbeat tells.
    return pid.isdigit() and local_process_is_gone(host, int(pid))


def ingest_claim(*, run_id: int) -> Run | None:
    """Claim a queued ingest run for this process; None when it is no longer queued.

    The code that runs is the connector's code (and its connection's) now, not when the run was
    queued.
    """
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, kind=RunKind.INGEST, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, executor=executor_identity()
    )
    if not claimed:
        return None
    run = Run.objects.select_related("connector__connection").get(pk=run_id)
    code = ingest_code(run.connector)
    for name, value in code.items():
        setattr(run, name, value)
    run.save(update_fields=list(code))
    return run


class IngestExecution:
    """One claimed ingest run, executed by the calling thread plus a pool of readers.

    `execute` runs one sandbox request (default: runs.services.run_in_sandbox) for the listing
    and the reads; `read_engine` builds the engine that reads the partitions from the run's
    ReadContext (default: the one `run.engine` names); `on_progress`, called by the executing
    thread, gets the run with its counters as they stand.
    """

    def __init__(
        self,
        run: Run,
        *,
        stop: threading.Event | None = None,
        execute: Execute = services.run_in_sandbox,
        read_engine: Callable[[ReadContext], ReadEngine] | None = None,
        on_progress: Callable[[Run], None] | None = None,
    ) -> None:
        self.run = run
        self.on_progress = on_progress
        self.connector = run.connector
        self.stop = stop or STOP
        self.execute_request = execute
        self.read_engine = read_engine or READ_ENGINES[run.engine]
        self.cancel = threading.Event()
        self.cancelled_by: str | None = None  # "cancel" (requested) or "stop" (worker stopping)
        self.logs = RunLogs(MAX_RUN_LOG_BYTES)
        self.progress = RunProgress(run)
        self.commits: IngestCommits | None = None  # once the plan is known
        self.concurrency = settings.INGEST_CONCURRENCY
        # The sandbox engine holds one of INGEST_CONCURRENCY read slots only while a request
        # runs, so one thread writes Parquet while another reads: room for both in the pool.
        self.pool = ThreadPoolExecutor(
            max_workers=2 * self.concurrency,
            thread_name_prefix="ingest-read",
            initializer=set_run_id,  # what the readers log names the run
            initargs=(run.pk,),
        )
        self.last_cancel_check = 0.0
        self.read_count = 0
        self.started = time.monotonic()
        self.timer = PhaseTimer()  # where the time went, kept in the run's result

    @property
    def failed_names(self) -> list[str]:
        return self.commits.failed_names if self.commits is not None else []

    # ------------------------------------------------------------ lifecycle

    def execute(self) -> Run:
        """Run the ingest to its end; never leaves the run "running" when it returns."""
        with run_logging(self.run.pk):
            try:
                self._execute()
            except BaseException as exc:
                self.cancel.set()  # kill whatever is still running in the sandbox
                self.pool.shutdown(wait=True, cancel_futures=True)
                if isinstance(exc, Exception):
                    logger.exception("ingest run %s failed", self.run.pk)
                    error = make_error(ErrorType.INTERNAL_ERROR, f"The ingest failed: {exc!r}")
                    error["traceback"] = traceback.format_exc()
                    self._finish(RunStatus.FAILED, error)
                    return self.run
                self._finish(RunStatus.INTERRUPTED, interrupted_error(type(exc).__name__))
                raise
            finally:
                self.pool.shutdown(wait=True, cancel_futures=True)
        return self.run

    def _execute(self) -> None:
        run, connector = self.run, self.connector
        if not run.dry_run and (missing := missing_reader_error(connector)) is not None:
            return self._finish(RunStatus.FAILED, missing)  # before listing anything
        if not run.dry_run:
            # This run is the connector's only active ingest: whatever a crashed run left
            # behind (temporary files, written but never committed files) can go.
            keep = set(
                Partition.objects.filter(connector=connector).values_list("storage_path", flat=True)
            )
            storage.sweep_connector_directory(connector.pk, keep)
        environment = connector_environment_ensure(connector=connector)
        self.timer.mark("prepare")
        run.parameters = {**run.parameters, "environment": environment.key}
        if not environment.ok:
            return self._finish(RunStatus.FAILED, environment.run_error())
        request = connector_request(
            connector, action=Action.READ, limits=engine_config.ingest_limits()
        )
        planned = plan_ingest(
            connector,
            request,
            inputs=run.inputs,
            execute=self.execute_request,
            environment=environment.ready,
            cancel=self.cancel,
            wait=self._in_pool,
        )
        self.timer.mark("list_and_plan")
        self.logs.add("list_objects", planned.listing.logs)
        run.isolation = planned.listing.isolation
        run.result = {"listing": planned.listing.summary()}
        if self.cancel.is_set():
            return self._finish_stopped()
        if planned.plan is None:
            return self._finish(RunStatus.FAILED, planned.error)
        plan = planned.plan
        run.result["plan"] = plan.to_dict(max_names=MAX_PLAN_NAMES)
        guard = None if run.parameters.get("allow_deletes") else planned.deletion_guard
        if guard is not None and not run.dry_run:
            return self._finish(RunStatus.FAILED, guard)
        run.partitions_skipped = len(plan.skip)
        if run.dry_run:
            run.result["deletion_guard"] = guard
            return self._finish(RunStatus.SUCCEEDED)
        self.commits = IngestCommits(
            run, paths=planned.paths, progress=self.progress, logs=self.logs, cancel=self.cancel
        )
        read_jobs, delete_jobs = self._create_jobs(plan)
        self.read_count = len(read_jobs)
        run.partitions_total = len(read_jobs) + len(delete_jobs)
        run.save(update_fields=["result", "isolation", "partitions_total", "partitions_skipped"])
        context = ReadContext(
            run_id=run.pk,
            connector_id=connector.pk,
            code_fingerprint=run.code_fingerprint,
            request=request,
            cancel=self.cancel,
            execute=self.execute_request,
            environment=environment.ready,
            concurrency=self.concurrency,
            batch_size=settings.INGEST_BATCH_SIZE,
        )
        self.timer.mark("jobs")
        self._read_all(self.read_engine(context), list(zip(plan.read, read_jobs, strict=True)))
        self.timer.mark("read_and_commit")
        if self.cancel.is_set():
            return self._finish_stopped()
        self._delete_all(list(zip(plan.delete, delete_jobs, strict=True)))
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

    # ------------------------------------------------------------ dispatch

    def _read_all(self, engine: ReadEngine, reads: list[PlannedJob]) -> None:
        """Hand the reads to the engine, the sizes it asks for, at most 2 x INGEST_CONCURRENCY
        reads in flight; commit each as it ends."""
        assert self.commits is not None
        queue = deque(reads)
        in_flight: set[Future[BatchOutcome]] = set()
        window = 2 * self.concurrency  # keeps every reader busy during commits
        while True:
            if not self.cancel.is_set():
                dispatched = []
                while len(in_flight) < window and queue:
                    size = min(engine.batch_size(len(queue)), len(queue))
                    if size == 0 and in_flight:
                        break  # the engine waits for a batch to end (its probes are out)
                    size = max(size, 1)
                    batch = [queue.popleft() for _ in range(size)]
                    in_flight.add(self.pool.submit(engine.read, batch))
                    dispatched += [job_id for _, job_id in batch]
                if dispatched:
                    PartitionJob.objects.filter(pk__in=dispatched).update(status=JobStatus.RUNNING)
            if not in_flight:
                break
            done, in_flight = wait(in_flight, timeout=TICK_S, return_when=FIRST_COMPLETED)
            batches = [future.result() for future in done]
            if batches:
                self.commits.commit_reads(batches)
            self._tick()
        if self.cancel.is_set():
            PartitionJob.objects.filter(
                run=self.run, status__in=(JobStatus.PENDING, JobStatus.RUNNING)
            ).update(status=JobStatus.CANCELLED, finished_at=timezone.now())

    def _delete_all(self, deletes: list[tuple[str, int]]) -> None:
        """Delete vanished partitions, committed in chunks."""
        assert self.commits is not None
        for start in range(0, len(deletes), DELETE_CHUNK):
            self.commits.delete(deletes[start : start + DELETE_CHUNK])
            self._tick()

    # ------------------------------------------------------------ progress, cancel, finish

    def _in_pool(self, work: Callable[[], T]) -> T:
        """Run `work` in a pool thread while keeping the heartbeat and the cancel check going."""
        future = self.pool.submit(work)
        while True:
            done, _ = wait([future], timeout=TICK_S)
            if done:
                return future.result()
            self._tick()

    def _tick(self) -> None:
        """Beat the heart when due, report progress, and turn a cancel request or a stop into
        the cancel event."""
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
        if now - self.progress.last_heartbeat >= settings.INGEST_HEARTBEAT_S:
            self.progress.beat()
        if self.on_progress is not None:
            self.on_progress(self.run)
        state = (
            Run.objects.filter(pk=self.run.pk)
            .values_list("status", "executor", "cancel_requested_at")
            .first()
        )
        if state is None or state[:2] != (RunStatus.RUNNING, self.run.executor):
            # Taken for dead (a heartbeat silent too long) and recovered: another process owns
            # the run now, or it has ended. Stop at once; _finish will not touch it.
            self.cancelled_by = "stop"
            self.cancel.set()
        elif state[2] is not None:
            self.cancelled_by = "cancel"
            self.cancel.set()

    def _finish_stopped(self) -> None:
        if self.cancelled_by == "stop":
            self._finish(RunStatus.INTERRUPTED, interrupted_error("the worker was stopped"))
        else:
            self._finish(
                RunStatus.CANCELLED,
                make_error(
                    ErrorType.CANCELLED,
                    "The ingest was cancelled; running reads were killed. Partitions committed "
                    "before the cancel stay.",
                ),
            )

    def _failed_error(self) -> dict[str, Any]:
        names = self.failed_names
        shown = ", ".join(repr(name) for name in names[:10])
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        return make_error(
            ErrorType.PARTITIONS_FAILED,
            f"{len(names)} of {self.read_count} partition read(s) failed: {shown}{more}. "
            "The others were committed; the next ingest reads only the failed ones again.",
        )

    def _finish(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Record the outcome; the conditional update never overwrites a finished run, nor one
        another process executes now."""
        run = self.run
        now = timezone.now()
        result = dict(run.result or {})
        result["failed_partitions"] = self.failed_names[:MAX_FAILED_NAMES]
        result["failed_count"] = len(self.failed_names)
        self.timer.mark("finish")
        # [phase, ms] pairs in the order they ran: PostgreSQL's jsonb keeps no key order.
        result["timings_ms"] = [[name, round(ms, 1)] for name, ms in self.timer.phases.items()]
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
        # Only while this process still owns the run: recovery may have handed it on.
        Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, executor=run.executor).update(
            **fields
        )
        run.refresh_from_db()


def interrupted_error(why: str) -> dict[str, Any]:
    return make_error(
        ErrorType.INTERRUPTED,
        f"The ingest was interrupted ({why}). Partitions committed before that stay; the next "
        "ingest reads the rest.",
    )
