"""Writes to runs: previews (run in the sandbox, recorded as Run rows) and ingests.

Ingest lifecycle: `ingest_enqueue` creates a queued Run and, once the transaction commits, a
django-tasks task (`runs.tasks.ingest_run`) that the worker (`manage.py worker`) picks up and
hands to `ingest_execute`. `ingest_execute` claims the run with a conditional UPDATE (queued ->
running), so a run is executed at most once, and returns when it is finished. `ingest_cancel`
stops a run; `ingest_recover` marks runs whose executing process died "interrupted" and removes
their leftover files. `ingest_plan` answers "what will the next ingest do?" without writing.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connections.models import CodeVersion, Connector, code_fingerprint
from connections.services import connector_environment_ensure
from connector_engine.contract import needs_spark
from connector_engine.environments.store import ReadyEnvironment
from connector_engine.protocol import (
    CHILD_KILLED,
    ErrorType,
    IngestEngine,
    SandboxRequest,
    SandboxResult,
    error_type,
    make_error,
)
from connector_engine.sandbox.registry import EnvironmentNotVisible
from connector_engine.spark.server import SparkServerError
from connector_engine.spark.sessions import SessionPoolBusy
from connectors_site import engine_config
from runs import storage
from runs.models import (
    STATUS_FOR_ERROR,
    WRITING_RUNS,
    JobStatus,
    Partition,
    PartitionJob,
    Run,
    RunKind,
    RunStatus,
)

if TYPE_CHECKING:
    from runs.ingest import IngestPlan


def execute(
    request: SandboxRequest,
    *,
    cancel: threading.Event | None = None,
    environment: ReadyEnvironment | None = None,
) -> SandboxResult:
    """Run one request in the sandbox (never in this process); `cancel` kills it when set.

    With `environment` (from connections.services.connector_environment_ensure), the request
    runs in that package environment's warm worker; without, in the base environment's.
    A request that uses Spark runs in a leased pooled Spark session (the local server starts if
    needed): a session the server closed meanwhile gets a new id and one retry; after the
    sandbox killed the client (timeout, cancel, limits), the session's operations are
    interrupted before another request may lease it.
    """
    if request.spark_remote is not None or not needs_spark(
        request.code, request.action, request.interface
    ):
        return _execute_sandboxed(request, cancel=cancel, environment=environment)
    try:
        with engine_config.spark_session_lease(wait_timeout_s=request.limits.timeout_s) as lease:
            result = _execute_sandboxed(
                replace(request, spark_remote=lease.url), cancel=cancel, environment=environment
            )
            if error_type(result.error) == "SparkSessionClosed":
                lease.rotate()
                result = _execute_sandboxed(
                    replace(request, spark_remote=lease.url),
                    cancel=cancel,
                    environment=environment,
                )
            if error_type(result.error) in CHILD_KILLED:
                lease.interrupt_then_release()
            return result
    except (SparkServerError, SessionPoolBusy) as exc:
        kind = "SparkUnavailable" if isinstance(exc, SparkServerError) else "SparkBusy"
        error = make_error(kind, str(exc))
        return SandboxResult(ok=False, action=request.action, error=error)


def _execute_sandboxed(
    request: SandboxRequest,
    *,
    cancel: threading.Event | None,
    environment: ReadyEnvironment | None,
) -> SandboxResult:
    """Run one request in the base sandbox or in its package environment's."""
    try:
        with engine_config.sandboxes().lease(environment) as sandbox:
            return sandbox.run(request, cancel=cancel)
    except EnvironmentNotVisible as exc:
        error = make_error("EnvironmentError", str(exc))
        return SandboxResult(ok=False, action=request.action, error=error)


def preview_run(
    *,
    connector: Connector,
    action: str,
    user=None,
    code: str | None = None,
    interface: str | None = None,
    parser: str | None = None,
    object: dict[str, Any] | None = None,
    row_limit: int | None = None,
    max_objects: int | None = None,
    timeout_s: float | None = None,
) -> Run:
    """Preview `action` on a connector's saved code, or on the given unsaved code; record it."""
    code = connector.code if code is None else code
    interface = interface or connector.interface
    parser = connector.parser if parser is None else parser
    fingerprint = code_fingerprint(code, connector.packages, interface, parser)
    run = Run.objects.create(
        connector=connector,
        code_version=CodeVersion.objects.filter(connector=connector, fingerprint=fingerprint)
        .order_by("-number")
        .first(),
        code_fingerprint=fingerprint,
        kind=action,
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
        user=user,
        parameters={
            "object": object,
            "row_limit": row_limit,
            "max_objects": max_objects,
            "interface": interface,
            "parser": parser,
            "unsaved_code": code != connector.code,
        },
    )
    request = SandboxRequest(
        action=action,
        code=code,
        library_code=connector.connection.library_code,
        interface=interface,
        parser=parser or None,
        credentials=connector.connection.decrypted_credentials(),
        object=object,
        limits=engine_config.preview_limits(
            row_limit=row_limit, max_objects=max_objects, timeout_s=timeout_s
        ),
    )
    environment = connector_environment_ensure(connector=connector)  # may build it: waits
    run.parameters["environment"] = environment.key
    if environment.ok:
        result = execute(request, environment=environment.ready)
    else:
        error = make_error("EnvironmentError", environment.error)
        error["traceback"] = environment.log[-20_000:]
        result = SandboxResult(ok=False, action=action, error=error)
    run_record_result(run=run, result=result)
    return run


def run_record_result(*, run: Run, result: SandboxResult) -> None:
    """Store what the sandbox returned on the run and finish it."""
    run.status = (
        RunStatus.SUCCEEDED
        if result.ok
        else STATUS_FOR_ERROR.get(error_type(result.error), RunStatus.FAILED)
    )
    run.result = result.result
    run.logs = result.logs
    run.set_error(result.error)
    run.isolation = result.isolation
    run.duration_ms = result.duration_ms
    run.finished_at = timezone.now()
    run.save()


# ---------------------------------------------------------------- ingest


class InvalidIngestOption(ValueError):
    """An ingest option that cannot apply to this connector."""


def check_ingest_engine(connector: Connector, engine: str) -> None:
    """Raise InvalidIngestOption unless `engine` can ingest this connector."""
    if engine not in tuple(IngestEngine):
        raise InvalidIngestOption(
            f"Unknown ingest engine {engine!r}: use one of {', '.join(IngestEngine)}"
        )
    if engine == IngestEngine.SPARK and connector.interface == "spark":
        raise InvalidIngestOption(
            "A spark connector already reads through Spark: scale-out is for pandas and bytes "
            "connectors"
        )


class IngestAlreadyActive(Exception):
    """The connector already has a queued or running ingest (only one at a time)."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"ingest #{run.pk} of this connector is already {run.status}")
        self.run = run


def _active_ingests(connector: Connector):
    return Run.objects.filter(
        connector=connector,
        kind=RunKind.INGEST,
        status__in=(RunStatus.QUEUED, RunStatus.RUNNING),
    ).filter(WRITING_RUNS)


def ingest_create(
    *, connector: Connector, user=None, dry_run: bool = False, engine: str = IngestEngine.SANDBOX
) -> Run:
    """Create a queued ingest run; raise IngestAlreadyActive when one is queued or running.

    Dry runs only list and plan, so they may run beside a real ingest. `engine` "spark" reads
    the partitions as one Spark job (runs.spark_ingest); InvalidIngestOption for an unknown
    engine or a spark connector (it reads through Spark already).
    """
    check_ingest_engine(connector, engine)
    ingest_recover(connector=connector)  # a dead worker's run must not block the connector
    with transaction.atomic():
        # Serialize concurrent creations for one connector (row lock; SQLite locks the file).
        Connector.objects.select_for_update().filter(pk=connector.pk).exists()
        if not dry_run and (active := _active_ingests(connector).first()) is not None:
            raise IngestAlreadyActive(active)
        fingerprint = connector.code_fingerprint
        return Run.objects.create(
            connector=connector,
            kind=RunKind.INGEST,
            status=RunStatus.QUEUED,
            code_fingerprint=fingerprint,
            code_version=_version_for(connector, fingerprint),
            user=user,
            dry_run=dry_run,
            engine=engine,
        )


def ingest_enqueue(
    *, connector: Connector, user=None, dry_run: bool = False, engine: str = IngestEngine.SANDBOX
) -> Run:
    """Create a queued ingest run and enqueue its task once the transaction commits."""
    from runs.tasks import ingest_run

    with transaction.atomic():
        run = ingest_create(connector=connector, user=user, dry_run=dry_run, engine=engine)
        run_id = run.pk
        transaction.on_commit(lambda: ingest_run.enqueue(run_id=run_id))
    return run


def ingest_execute(*, run_id: int, stop: threading.Event | None = None) -> Run:
    """Claim a queued ingest run and execute it in this process; return the finished run.

    A run that is no longer queued (already claimed, cancelled) is returned untouched.
    `stop`, when set, interrupts the run (default: runs.ingest.STOP, set by the worker).
    """
    from runs.ingest import IngestExecution, executor_identity

    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, kind=RunKind.INGEST, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, executor=executor_identity()
    )
    run = Run.objects.select_related("connector__connection").get(pk=run_id)
    if not claimed:
        return run
    # The code that runs is the connector's code now, not when the run was queued.
    connector = run.connector
    run.code_fingerprint = connector.code_fingerprint
    run.code_version = _version_for(connector, run.code_fingerprint)
    run.save(update_fields=["code_fingerprint", "code_version"])
    return IngestExecution(run, stop=stop).execute()


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
    are then removed for every connector (or just `connector`) with no running ingest.
    Returns the ids of the runs marked interrupted. The worker calls this when it starts.
    """
    now = timezone.now()
    running = Run.objects.filter(kind=RunKind.INGEST, status=RunStatus.RUNNING)
    if connector is not None:
        running = running.filter(connector=connector)
    interrupted = []
    for run in running.only("pk", "executor", "heartbeat_at"):
        if not _executor_is_gone(run, now):
            continue
        updated = Run.objects.filter(
            pk=run.pk, status=RunStatus.RUNNING, heartbeat_at=run.heartbeat_at
        ).update(
            status=RunStatus.INTERRUPTED,
            finished_at=now,
            **Run.error_fields(
                make_error(
                    ErrorType.INTERRUPTED,
                    f"The process executing this ingest ({run.executor or 'unknown'}) stopped "
                    "without finishing it. Partitions committed before that stay; the next ingest "
                    "reads the rest.",
                )
            ),
        )
        if updated:  # another process may have recovered it first
            PartitionJob.objects.filter(
                run_id=run.pk, status__in=(JobStatus.PENDING, JobStatus.RUNNING)
            ).update(
                status=JobStatus.CANCELLED,
                finished_at=now,
                **PartitionJob.error_fields(make_error(ErrorType.INTERRUPTED, "")),
            )
            interrupted.append(run.pk)
    ids = [connector.pk] if connector is not None else storage.connector_directories()
    busy = set(
        Run.objects.filter(kind=RunKind.INGEST, status=RunStatus.RUNNING, connector_id__in=ids)
        .filter(WRITING_RUNS)
        .values_list("connector_id", flat=True)
    )
    for connector_id in ids:
        if connector_id not in busy:
            keep = set(
                Partition.objects.filter(connector_id=connector_id).values_list(
                    "storage_path", flat=True
                )
            )
            storage.sweep_connector_directory(connector_id, keep)
    return interrupted


def _executor_is_gone(run: Run, now) -> bool:
    """Say whether the process executing a running ingest is dead."""
    if run.heartbeat_at is None:
        return True
    if (now - run.heartbeat_at).total_seconds() > settings.INGEST_STALE_AFTER_S:
        return True
    host, _, pid = run.executor.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only its heartbeat tells
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def ingest_plan(*, connector: Connector) -> IngestPlan:
    """List the connector in the sandbox and compare with what is committed; write nothing."""
    from runs.ingest import plan_connector

    return plan_connector(connector)


def _version_for(connector: Connector, fingerprint: str) -> CodeVersion | None:
    return (
        CodeVersion.objects.filter(connector=connector, fingerprint=fingerprint)
        .order_by("-number")
        .first()
    )
