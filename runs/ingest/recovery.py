"""Recovery: nothing a dead process left behind stays stranded, whichever worker finds it.

Any worker (`manage.py worker`) calls `worker_recover` when it starts and every RECOVER_EVERY_S
(IngestRecovery). It, in order:

- finishes (as failed) task rows left "running" by a worker that is dead (runs.workers):
  django-tasks-db never reaps them;
- hands a running ingest whose executor is gone (a heartbeat older than INGEST_STALE_AFTER_S,
  or a dead PID on this host) to another worker: it is queued again with a new task and the
  next attempt reads what is not committed yet. After INGEST_MAX_ATTEMPTS attempts, or when a
  cancel was requested, it ends "interrupted" instead (what `ingest_recover` does to all);
- gives a task again to a queued ingest that has had none for ORPHAN_AFTER_S (its creator died
  between creating it and handing it over, or its worker died between taking the task and
  claiming the run); the conditional claim (runs.ingest.execution.ingest_claim) still runs it
  at most once;
- removes temporary and unreferenced Parquet files of connectors with no active ingest, and the
  folders of sandbox fork servers whose process is gone (connector_engine.sandbox.leftovers);
- forgets the heartbeat rows of dead workers.

A graceful stop (SIGTERM of the worker) still ends its run "interrupted" (runs.ingest.execution).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from connections.models import Connector
from connector_engine.protocol import ErrorType, make_error
from connector_engine.sandbox.leftovers import remove_sandbox_leftovers
from runs import storage
from runs.background import PeriodicWork
from runs.ingest.execution import executor_is_gone
from runs.models import (
    ACTIVE_STATUSES,
    WRITING_RUNS,
    JobStatus,
    Partition,
    PartitionJob,
    Run,
    RunKind,
    RunStatus,
    WorkerHeartbeat,
)
from runs.workers import worker_is_gone

logger = logging.getLogger(__name__)

RECOVER_EVERY_S = 5.0
# A queued ingest without a task for this long was abandoned by whoever created it: the normal
# hand-over (runs.tasks.ingest_enqueue) takes milliseconds.
ORPHAN_AFTER_S = 10.0


class WorkerLost(Exception):
    """The worker running a task stopped without finishing it (recorded on the task row)."""


@dataclass(frozen=True)
class IngestQueue:
    """How to hand a queued ingest to the workers: its task's path, and a function that
    enqueues the task of a run id (called inside the caller's transaction)."""

    task_path: str
    enqueue: Callable[[int], object]


@dataclass
class Recovered:
    """What one recovery did."""

    tasks_failed: list[str] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    interrupted: list[int] = field(default_factory=list)
    handed_over: list[int] = field(default_factory=list)
    sandbox_leftovers: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        """One line per kind of thing done, for the worker's output."""
        lines = []
        if self.tasks_failed:
            lines.append(f"Finished {len(self.tasks_failed)} task(s) of dead workers (failed).")
        if self.resumed:
            lines.append(f"Queued ingest(s) {_ids(self.resumed)} again (their executor died).")
        if self.interrupted:
            ids = _ids(self.interrupted)
            lines.append(f"Marked ingest(s) {ids} interrupted (their worker had died).")
        if self.handed_over:
            lines.append(f"Gave queued ingest(s) {_ids(self.handed_over)} a task again.")
        if self.sandbox_leftovers:
            lines.append(f"Removed {len(self.sandbox_leftovers)} leftover sandbox folder(s).")
        return lines


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{pk}" for pk in ids)


def worker_recover(*, queue: IngestQueue, sweep_all: bool = False) -> Recovered:
    """Recover everything dead processes left (see the module docstring).

    `sweep_all` sweeps the partition folders of every connector with no active ingest (a worker
    starting); otherwise only those of the runs interrupted now.
    """
    recovered = Recovered()
    now = timezone.now()
    recovered.tasks_failed = dead_worker_tasks_fail(now=now)
    recovered.resumed, recovered.interrupted = running_ingests_recover(queue=queue, now=now)
    recovered.handed_over = orphan_ingests_hand_over(queue=queue, now=now)
    swept = storage.connector_directories() if sweep_all else _connectors_of(recovered.interrupted)
    partition_folders_sweep(swept)
    recovered.sandbox_leftovers = remove_sandbox_leftovers()
    return recovered


def dead_worker_tasks_fail(*, now: datetime | None = None) -> list[str]:
    """Mark "failed" the task rows left running by dead workers; forget those workers' rows.

    Returns the ids of the tasks finished.
    """
    now = now or timezone.now()
    # Tasks first: a worker registers before it claims anything, so every worker that claimed
    # one of these tasks has a row by the time the heartbeats are read.
    running = list(DBTaskResult.objects.running().only("id", "worker_ids", "started_at"))
    heartbeats = list(WorkerHeartbeat.objects.all())
    live = {hb.worker_id for hb in heartbeats if not worker_is_gone(hb, now)}
    failed = []
    for task in running:
        worker = task.worker_ids[-1] if task.worker_ids else "unknown"
        if worker in live:
            continue
        message = (
            f"The worker {worker} running this task stopped without finishing it (its heartbeat "
            "is gone). An ingest it was running is queued again or marked interrupted."
        )
        updated = DBTaskResult.objects.filter(
            pk=task.pk, status=TaskResultStatus.RUNNING, started_at=task.started_at
        ).update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
            traceback=message,
            return_value=None,
        )
        if updated:
            failed.append(str(task.pk))
    for hb in heartbeats:
        if hb.worker_id not in live:  # unless it beat since: then it is alive after all
            WorkerHeartbeat.objects.filter(pk=hb.pk, beat_at=hb.beat_at).delete()
    return failed


def running_ingests_recover(
    *,
    queue: IngestQueue | None,
    connector: Connector | None = None,
    now: datetime | None = None,
) -> tuple[list[int], list[int]]:
    """Queue again (with `queue`) or mark interrupted the running ingests whose executor is
    gone; return (ids queued again, ids interrupted).

    Without `queue` every such run is interrupted.
    """
    now = now or timezone.now()
    running = Run.objects.filter(kind=RunKind.INGEST, status=RunStatus.RUNNING)
    if connector is not None:
        running = running.filter(connector=connector)
    fields = ("pk", "executor", "heartbeat_at", "parameters", "cancel_requested_at")
    resumed, interrupted = [], []
    for run in running.only(*fields):
        if not executor_is_gone(run, now):
            continue
        attempt = int(run.parameters.get("attempt", 1))
        again = (
            queue is not None
            and run.cancel_requested_at is None
            and attempt < settings.INGEST_MAX_ATTEMPTS
        )
        if again and _resume(run, attempt, queue, now):
            resumed.append(run.pk)
        elif not again and _interrupt(run, attempt, now):
            interrupted.append(run.pk)
    return resumed, interrupted


def _cancel_unfinished_jobs(run_id: int, now: datetime, message: str) -> None:
    PartitionJob.objects.filter(
        run_id=run_id, status__in=(JobStatus.PENDING, JobStatus.RUNNING)
    ).update(
        status=JobStatus.CANCELLED,
        finished_at=now,
        **PartitionJob.error_fields(make_error(ErrorType.INTERRUPTED, message)),
    )


def _resume(run: Run, attempt: int, queue: IngestQueue, now: datetime) -> bool:
    """Queue a run whose executor died again, with a task, as its next attempt."""
    done = PartitionJob.objects.filter(run_id=run.pk, status=JobStatus.SUCCEEDED).count()
    earlier = [
        *run.parameters.get("attempts", []),
        {"executor": run.executor, "stopped_at": now.isoformat(), "partitions_done": done},
    ]
    with transaction.atomic():
        # The heartbeat in the condition: a run that beat since it was read is alive after all.
        updated = Run.objects.filter(
            pk=run.pk, status=RunStatus.RUNNING, heartbeat_at=run.heartbeat_at
        ).update(
            status=RunStatus.QUEUED,
            parameters={**run.parameters, "attempt": attempt + 1, "attempts": earlier},
            executor="",
            heartbeat_at=None,
            # This attempt's counters start again; the jobs of the earlier ones stay listed.
            partitions_total=0,
            partitions_done=0,
            partitions_failed=0,
            partitions_skipped=0,
            rows_written=0,
            bytes_written=0,
        )
        if not updated:  # another process recovered it first
            return False
        _cancel_unfinished_jobs(
            run.pk,
            now,
            f"The process executing this ingest ({run.executor or 'unknown'}) stopped; the run "
            "was queued again and goes on from the committed partitions.",
        )
        queue.enqueue(run.pk)
    return True


def _interrupt(run: Run, attempt: int, now: datetime) -> bool:
    """Mark a run whose executor died "interrupted"."""
    tries = f" (attempt {attempt} of {settings.INGEST_MAX_ATTEMPTS})" if attempt > 1 else ""
    with transaction.atomic():
        updated = Run.objects.filter(
            pk=run.pk, status=RunStatus.RUNNING, heartbeat_at=run.heartbeat_at
        ).update(
            status=RunStatus.INTERRUPTED,
            finished_at=now,
            **Run.error_fields(
                make_error(
                    ErrorType.INTERRUPTED,
                    f"The process executing this ingest ({run.executor or 'unknown'}) stopped "
                    f"without finishing it{tries}. Partitions committed before that stay; the "
                    "next ingest reads the rest.",
                )
            ),
        )
        if updated:  # another process may have recovered it first
            _cancel_unfinished_jobs(run.pk, now, "")
    return bool(updated)


def orphan_ingests_hand_over(*, queue: IngestQueue, now: datetime | None = None) -> list[int]:
    """Enqueue a task for every queued ingest that has had no live one for ORPHAN_AFTER_S;
    return their ids.

    Call it after dead_worker_tasks_fail: a task still running is then a live worker's.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=ORPHAN_AFTER_S)
    queued = set(
        Run.objects.filter(
            kind=RunKind.INGEST, status=RunStatus.QUEUED, enqueued_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    handed = []
    for run_id in sorted(queued - _ingests_with_a_live_task(queue)):
        with transaction.atomic():
            # The row lock keeps two workers from handing the same run over twice (SQLite
            # serializes the transactions instead).
            locked = (
                Run.objects.select_for_update(skip_locked=True)
                .filter(pk=run_id, status=RunStatus.QUEUED)
                .exists()
            )
            if locked and run_id not in _ingests_with_a_live_task(queue):  # still none
                queue.enqueue(run_id)
                handed.append(run_id)
    return handed


def ingest_abandoned(run: Run, *, queue: IngestQueue, now: datetime | None = None) -> bool:
    """Whether a queued ingest has had no live task for ORPHAN_AFTER_S: whoever created it died
    before handing it over or running it (e.g. a killed `ingest --wait`)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=ORPHAN_AFTER_S)
    if run.status != RunStatus.QUEUED or run.enqueued_at is None or run.enqueued_at >= cutoff:
        return False
    return run.pk not in _ingests_with_a_live_task(queue)


def _ingests_with_a_live_task(queue: IngestQueue) -> set[int]:
    """Run ids that a ready or running ingest task names."""
    live = DBTaskResult.objects.filter(
        task_path=queue.task_path,
        status__in=(TaskResultStatus.READY, TaskResultStatus.RUNNING),
    ).values_list("args_kwargs", flat=True)
    run_ids = set()
    for args_kwargs in live:  # ingest_run(run_id), called with a keyword or not
        args, kwargs = args_kwargs.get("args") or [None], args_kwargs.get("kwargs") or {}
        run_ids.add(kwargs.get("run_id", args[0]))
    return run_ids


def _connectors_of(run_ids: list[int]) -> list[int]:
    return sorted(set(Run.objects.filter(pk__in=run_ids).values_list("connector_id", flat=True)))


def partition_folders_sweep(connector_ids: list[int]) -> None:
    """Remove temporary and unreferenced Parquet files of each connector with no active ingest.

    Where the database has row locks, the connector's row is locked meanwhile: a new ingest of
    it (runs.ingest.services.ingest_create locks it too) waits, so nothing it writes is taken
    for a leftover. SQLite has one writer at a time and takes no lock for this: a sweep would
    keep every other writer waiting.
    """
    for connector_id in connector_ids:
        if connection.features.has_select_for_update:
            with transaction.atomic():
                Connector.objects.select_for_update().filter(pk=connector_id).exists()
                _sweep_unless_active(connector_id)
        else:
            _sweep_unless_active(connector_id)


def _sweep_unless_active(connector_id: int) -> None:
    active = Run.objects.filter(
        connector_id=connector_id, kind=RunKind.INGEST, status__in=ACTIVE_STATUSES
    ).filter(WRITING_RUNS)
    if active.exists():  # an active ingest owns its temporary and not yet committed files
        return
    keep = set(
        Partition.objects.filter(connector_id=connector_id).values_list("storage_path", flat=True)
    )
    storage.sweep_connector_directory(connector_id, keep)


class IngestRecovery(PeriodicWork):
    """Call worker_recover every RECOVER_EVERY_S in a daemon thread while a block runs."""

    thread_name = "ingest-recovery"
    failure = "Recovering what dead processes left failed; retrying later."

    def __init__(self, queue: IngestQueue, *, interval_s: float = RECOVER_EVERY_S) -> None:
        super().__init__()
        self.queue = queue
        self.interval_s = interval_s

    def wait_s(self) -> float:
        return self.interval_s

    def work(self) -> None:
        recovered = worker_recover(queue=self.queue)
        for line in recovered.report():
            logger.info(line)
