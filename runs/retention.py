"""Run retention: finished runs older than RUN_RETENTION_DAYS are deleted.

Kept whatever their age: queued and running runs, and every ingest that still owns committed
partitions (Partition.run points at it), since its page explains where that data came from.
A deleted ingest takes its partition jobs with it. `manage.py prune_runs` prunes on demand;
the worker (`manage.py worker`) prunes when it starts and then daily, with a RunPruner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from connector_engine.protocol import ErrorType, make_error
from runs import selectors
from runs.background import PeriodicWork
from runs.models import FINISHED_STATUSES, Partition, Run, RunStatus

logger = logging.getLogger(__name__)

DAY_S = 24 * 60 * 60.0
# Runs deleted per transaction: a big prune never holds the database for long.
BATCH_SIZE = 500
# After a failed prune (e.g. the database was locked too long), try again this much later.
RETRY_AFTER_S = 15 * 60.0
# How long the worker waits at exit for a prune in progress; the thread is a daemon after that.


def retention_cutoff(
    *, older_than_days: float | None = None, now: datetime | None = None
) -> datetime | None:
    """Runs finished before this are deleted; None when retention is off (RUN_RETENTION_DAYS=0
    and no explicit age)."""
    days = settings.RUN_RETENTION_DAYS if older_than_days is None else older_than_days
    if older_than_days is None and not days:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def prunable_runs(*, older_than_days: float | None = None, now: datetime | None = None) -> QuerySet:
    """The runs a prune deletes: finished before the cutoff, not owning committed partitions."""
    cutoff = retention_cutoff(older_than_days=older_than_days, now=now)
    if cutoff is None:
        return Run.objects.none()
    finished_before = Q(finished_at__lt=cutoff) | Q(
        finished_at__isnull=True, enqueued_at__lt=cutoff
    )
    return (
        Run.objects.filter(finished_before, status__in=FINISHED_STATUSES)
        .exclude(Exists(Partition.objects.filter(run=OuterRef("pk"))))
        .order_by()
    )


def previews_interrupt_abandoned(*, now: datetime | None = None) -> int:
    """Mark previews left "running" by a web process that died interrupted; return how many."""
    now = now or timezone.now()
    error = make_error(
        ErrorType.INTERRUPTED,
        "The process running this preview stopped before it finished; run it again.",
    )
    return selectors.abandoned_previews(now).update(
        status=RunStatus.INTERRUPTED, finished_at=now, **Run.error_fields(error)
    )


def runs_prune(
    *,
    older_than_days: float | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Delete finished runs older than `older_than_days` (default RUN_RETENTION_DAYS), except
    ingests that own committed partitions; return how many runs were deleted.

    Previews a dead web process left "running" are first marked interrupted, so they age out too.
    """
    previews_interrupt_abandoned(now=now)
    deleted = 0
    while True:
        runs = prunable_runs(older_than_days=older_than_days, now=now)
        with transaction.atomic():
            batch = list(runs.values_list("pk", flat=True)[:batch_size])
            if not batch:
                return deleted
            # The rules are checked again by the delete itself; only("pk"): results can be large.
            _, per_model = runs.filter(pk__in=batch).only("pk").delete()
        deleted += per_model.get(Run._meta.label, 0)


class RunPruner(PeriodicWork):
    """Prune runs when due: at the first tick, then every `interval_s` (a day).

    `clock` (seconds, monotonic) is a parameter so tests drive time; `prune` is what it calls.
    `running()` ticks in a background thread while a block runs (the worker's loop) and stops
    the thread when the block ends (runs.background).
    """

    thread_name = "run-pruner"
    failure = "Pruning runs failed; retrying later."

    def __init__(
        self,
        *,
        interval_s: float = DAY_S,
        clock: Callable[[], float] = time.monotonic,
        prune: Callable[[], int] = runs_prune,
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.prune = prune
        super().__init__()
        self.next_due: float | None = None  # None: due at the next tick

    def tick(self) -> int | None:
        """Prune when due and return how many runs were deleted; None when not due yet."""
        now = self.clock()
        if self.next_due is not None and now < self.next_due:
            return None
        self.next_due = now + RETRY_AFTER_S  # if this prune fails, the next tick retries
        deleted = self.prune()
        self.next_due = now + self.interval_s
        return deleted

    def seconds_until_due(self) -> float:
        """How long until the next prune is due (0 when it is due now)."""
        if self.next_due is None:
            return 0.0
        return max(self.next_due - self.clock(), 0.0)

    def wait_s(self) -> float:
        return self.seconds_until_due()

    def work(self) -> None:
        if deleted := self.tick():
            logger.info("Removed %d finished run(s) past their retention.", deleted)
