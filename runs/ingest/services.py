"""Ingest lifecycle: create, execute, cancel, recover, plan.

`ingest_create` creates a queued Run; runs.tasks.ingest_enqueue creates one and, once the
transaction commits, a django-tasks task (`runs.tasks.ingest_run`) that the worker
(`manage.py worker`) picks up and hands to `ingest_execute`. `ingest_execute` claims the run
with a conditional UPDATE (queued -> running), so a run is executed at most once, and returns
when it is finished (runs.ingest.execution). `ingest_cancel` stops a run; `ingest_recover` marks
runs whose executing process died "interrupted" and removes their leftover files (the worker
queues them again instead: runs.ingest.recovery). `ingest_plan` answers "what will the next
ingest do?" without writing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from connections.models import Connector
from connector_engine.protocol import Action, ErrorType, IngestEngine, Interface, make_error
from connectors_site import engine_config
from environments.services import connector_environment_ensure
from runs import storage
from runs.ingest import recovery
from runs.ingest.execution import IngestExecution, ingest_claim
from runs.ingest.planning import IngestPlan, ListingOutcome, ingest_code, ingest_inputs, plan_ingest
from runs.models import WRITING_RUNS, Run, RunKind, RunStatus
from runs.services import connector_request, run_in_sandbox


class InvalidIngestOption(ValueError):
    """An ingest option that cannot apply to this connector."""


class IngestAlreadyActive(Exception):
    """The connector already has a queued or running ingest (only one at a time)."""

    def __init__(self, run: Run, hint: str = "") -> None:
        message = f"ingest #{run.pk} of this connector is already {run.status}"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.run = run


def check_ingest_engine(connector: Connector, engine: str) -> None:
    """Raise InvalidIngestOption unless `engine` can ingest this connector."""
    if engine not in tuple(IngestEngine):
        raise InvalidIngestOption(
            f"Unknown ingest engine {engine!r}: use one of {', '.join(IngestEngine)}"
        )
    if engine == IngestEngine.SPARK and connector.interface == Interface.SPARK:
        raise InvalidIngestOption(
            "A spark connector already reads through Spark: scale-out is for pandas and bytes "
            "connectors"
        )
    if engine == IngestEngine.SPARK and not connector.connection.network_access:
        raise InvalidIngestOption(
            "This connection has no network access, and Spark is reached over the network: "
            "ingest without Spark, or turn network access on"
        )


def _active_ingests(connector: Connector) -> QuerySet[Run]:
    return Run.objects.filter(
        connector=connector,
        kind=RunKind.INGEST,
        status__in=(RunStatus.QUEUED, RunStatus.RUNNING),
    ).filter(WRITING_RUNS)


def ingest_create(
    *,
    connector: Connector,
    user=None,
    dry_run: bool = False,
    engine: str = IngestEngine.SANDBOX,
    allow_deletes: bool = False,
) -> Run:
    """Create a queued ingest run; raise IngestAlreadyActive when one is queued or running.

    Dry runs only list and plan, so they may run beside a real ingest. `engine` "spark" reads
    the partitions as one Spark job (runs.ingest.spark_reads); InvalidIngestOption for an
    unknown engine or a spark connector (it reads through Spark already). `allow_deletes`
    (recorded in the run's parameters) lets a plan delete more than the deletion guard allows.
    """
    check_ingest_engine(connector, engine)
    ingest_recover(connector=connector)  # a dead worker's run must not block the connector
    with transaction.atomic():
        # Serialize concurrent creations for one connector (row lock; SQLite locks the file).
        Connector.objects.select_for_update().filter(pk=connector.pk).exists()
        if not dry_run and (active := _active_ingests(connector).first()) is not None:
            raise IngestAlreadyActive(active)
        return Run.objects.create(
            connector=connector,
            kind=RunKind.INGEST,
            status=RunStatus.QUEUED,
            **ingest_code(connector),
            parameters={"allow_deletes": True} if allow_deletes else {},
            user=user,
            dry_run=dry_run,
            engine=engine,
        )


def ingest_execute(
    *,
    run_id: int,
    stop: threading.Event | None = None,
    on_progress: Callable[[Run], None] | None = None,
) -> Run:
    """Claim a queued ingest run and execute it in this process; return the finished run.

    A run that is no longer queued (already claimed, cancelled) is returned untouched.
    `stop`, when set, interrupts the run (default: runs.ingest.execution.STOP, set by the
    worker). `on_progress` gets the run, as it goes, several times a second at most.
    """
    run = ingest_claim(run_id=run_id)
    if run is None:
        return Run.objects.select_related("connector__connection").get(pk=run_id)
    return IngestExecution(run, stop=stop, on_progress=on_progress).execute()


def ingest_cancel(*, run: Run) -> bool:
    """Cancel a queued or running ingest; return False when it had already finished.

    A queued run is cancelled at once. A running one gets a cancel request: its executor kills
    the running reads within a fraction of a second and ends the run "cancelled"; committed
    partitions stay.
    """
    now = timezone.now()
    runs = Run.objects.filter(pk=run.pk, kind=RunKind.INGEST)
    cancelled = runs.filter(status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED,
        cancel_requested_at=now,
        finished_at=now,
        **Run.error_fields(
            make_error(ErrorType.CANCELLED, "The ingest was cancelled before it started.")
        ),
    )
    if not cancelled:
        cancelled = runs.filter(status=RunStatus.RUNNING, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now
        )
        cancelled = cancelled or runs.filter(status=RunStatus.RUNNING).exists()
        # Nobody will act on the request if the executing process is dead.
        ingest_recover(connector=run.connector)
    run.refresh_from_db()
    return bool(cancelled)


def ingest_recover(*, connector: Connector | None = None) -> list[int]:
    """Mark running ingests whose process is gone "interrupted"; sweep leftover files.

    A run's process is gone when its heartbeat is older than INGEST_STALE_AFTER_S, or when it
    ran on this host under a PID that no longer exists. Temporary and unreferenced Parquet files
    are then removed for every connector (or just `connector`) with no active ingest. Returns
    the ids of the runs marked interrupted. The worker goes further (queues such runs again:
    runs.ingest.recovery.worker_recover); creating and cancelling an ingest call this.
    """
    _, interrupted = recovery.running_ingests_recover(queue=None, connector=connector)
    ids = [connector.pk] if connector is not None else storage.connector_directories()
    recovery.partition_folders_sweep(ids)
    return interrupted


def ingest_plan(*, connector: Connector) -> IngestPlan:
    """List the connector in the sandbox and compare with what is committed; write nothing."""
    environment = connector_environment_ensure(connector=connector)
    if not environment.ok:
        return IngestPlan(
            ListingOutcome(ok=False, error=environment.run_error(), logs=environment.log)
        )
    return plan_ingest(
        connector,
        connector_request(connector, action=Action.READ, limits=engine_config.ingest_limits()),
        inputs=ingest_inputs(connector),
        execute=run_in_sandbox,
        environment=environment.ready,
    )
