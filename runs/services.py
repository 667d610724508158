"""Writes to runs: previews, run in the sandbox and recorded as Run rows.

`run_in_sandbox` is the one gateway to the sandbox for Django code (previews and ingests alike).
Ingests have their own services: runs.ingest.services.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from connections.models import Connector, code_fingerprint
from connector_engine.contract import needs_spark
from connector_engine.environments.store import ReadyEnvironment
from connector_engine.output import cap_text
from connector_engine.protocol import (
    CHILD_KILLED,
    Action,
    ErrorType,
    Limits,
    SandboxRequest,
    SandboxResult,
    error_type,
    make_error,
)
from connector_engine.sandbox.registry import EnvironmentNotVisible
from connector_engine.spark.server import SparkServerError
from connector_engine.spark.sessions import SessionPoolBusy
from connectors_site import engine_config
from connectors_site.logs import run_logging
from environments.services import connector_environment_ensure
from environments.tasks import connector_environment_start
from runs import selectors
from runs.bounds import result_bounded
from runs.models import STATUS_FOR_ERROR, Run, RunStatus
from runs.timing import PhaseTimer

# Any number, as long as nothing else takes this PostgreSQL advisory lock.
_ADMISSION_LOCK = 0x50524556  # "PREV"


def run_in_sandbox(
    request: SandboxRequest,
    *,
    cancel: threading.Event | None = None,
    environment: ReadyEnvironment | None = None,
) -> SandboxResult:
    """Run one request in the sandbox (never in this process); `cancel` kills it when set.

    With `environment` (from environments.services.connector_environment_ensure), the request
    runs in that package environment's warm fork server; without, in the base environment's.
    A request that uses Spark runs in a leased pooled Spark session (the local server starts if
    needed): a session the server closed meanwhile gets a new id and one retry; after the
    sandbox killed the client (timeout, cancel, limits), the session's operations are
    interrupted before another request may lease it.
    """
    if request.spark_remote is not None or not needs_spark(
        request.code, request.action, request.interface
    ):
        return _execute_sandboxed(request, cancel=cancel, environment=environment)
    if not request.network:
        error = make_error(
            ErrorType.NOT_AVAILABLE,
            "This connection has no network access, and Spark is reached over the network: "
            "turn network access on for the connection to use Spark.",
        )
        return SandboxResult(ok=False, action=request.action, error=error)
    try:
        lease_session = engine_config.spark_session_lease(
            tenant=request.tenant, wait_timeout_s=request.limits.timeout_s
        )
        with lease_session as lease:
            result = _execute_sandboxed(
                replace(request, spark_remote=lease.url), cancel=cancel, environment=environment
            )
            if error_type(result.error) == ErrorType.SPARK_SESSION_CLOSED:
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
        unavailable = isinstance(exc, SparkServerError)
        kind = ErrorType.SPARK_UNAVAILABLE if unavailable else ErrorType.SPARK_BUSY
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
        error = make_error(ErrorType.ENVIRONMENT_ERROR, str(exc))
        return SandboxResult(ok=False, action=request.action, error=error)


def connector_request(
    connector: Connector,
    *,
    action: str,
    limits: Limits,
    code: str | None = None,
    interface: str | None = None,
    parser: str | None = None,
    parser_options: dict[str, Any] | None = None,
    object: dict[str, Any] | None = None,
    credentials: str | None = None,
) -> SandboxRequest:
    """Return a sandbox request for a connector: its saved code, or the code, interface, parser
    and parser options given (the editor's unsaved ones), with its connection's library and
    credentials."""
    parser = connector.parser if parser is None else parser
    return SandboxRequest(
        action=action,
        code=connector.code if code is None else code,
        library_code=connector.connection.library_code,
        interface=interface or connector.interface,
        parser=parser or None,
        parser_options=connector.parser_options_for(parser, parser_options),
        credentials=(
            connector.connection.decrypted_credentials() if credentials is None else credentials
        ),
        secret_fields=connector.connection.secret_field_names(),
        object=object,
        limits=limits,
        network=connector.connection.network_access,
        tenant=f"connection-{connector.connection_id}",
    )


def preview_run(
    *,
    connector: Connector,
    action: str,
    user=None,
    code: str | None = None,
    interface: str | None = None,
    parser: str | None = None,
    parser_options: dict[str, Any] | None = None,
    packages: str | None = None,
    object: dict[str, Any] | None = None,
    row_limit: int | None = None,
    max_objects: int | None = None,
    timeout_s: float | None = None,
    wait_for_environment: bool = True,
) -> Run:
    """Preview `action` on a connector's saved code, or on the given unsaved code, parser
    options and connector packages (None: the saved ones); record it.

    A connector whose package environment (the connection's packages and files with these
    connector packages) is not built yet waits for its build, unless `wait_for_environment` is
    False (web requests): then the build is queued for the worker and the preview fails at once
    with EnvironmentBuilding.
    """
    timer = PhaseTimer()
    # Line breaks as saved (connector_save_code): CRLF from a browser form is LF.
    code = connector.code if code is None else code.replace("\r\n", "\n")
    interface = interface or connector.interface
    parser = connector.parser if parser is None else parser
    parser_options = connector.parser_options_for(parser, parser_options)
    packages = connector.packages if packages is None else packages.replace("\r\n", "\n")
    fingerprint = code_fingerprint(code, packages, interface, parser, parser_options)
    run = _preview_admit(
        connector=connector,
        # Code identical to a saved version (the latest or any) is recorded against it.
        code_version=selectors.code_version_for(connector, fingerprint),
        code_fingerprint=fingerprint,
        kind=action,
        user=user,
        parameters={
            "object": object,
            "row_limit": row_limit,
            "max_objects": max_objects,
            "timeout_s": timeout_s,
            "interface": interface,
            "parser": parser,
            "parser_options": parser_options,
            "unsaved_code": code != connector.code,
            "unsaved_packages": packages != connector.packages,
        },
    )
    timer.mark("admit")
    run.timer = timer  # the view adds its rendering and sends the phases (Server-Timing)
    if run.status != RunStatus.RUNNING:
        return run  # refused: too many previews are running
    with run_logging(run.pk):  # what is logged meanwhile names the run
        try:
            request = connector_request(
                connector,
                action=action,
                limits=engine_config.preview_limits(
                    row_limit=row_limit, max_objects=max_objects, timeout_s=timeout_s
                ),
                code=code,
                interface=interface,
                parser=parser,
                parser_options=parser_options,
                object=object,
            )
            if wait_for_environment:  # may build: waits
                environment = connector_environment_ensure(connector=connector, packages=packages)
            else:
                environment = connector_environment_start(connector=connector, packages=packages)
            run.parameters["environment"] = environment.key
            timer.mark("prepare")
            if environment.ok:
                result = run_in_sandbox(request, environment=environment.ready)
                timer.mark("sandbox")
                timer.add(result.timings, prefix="sandbox-")
            else:
                result = SandboxResult(ok=False, action=action, error=environment.run_error())
        except BaseException as exc:
            # Finish the run, or it would count as running against the caps for a long while.
            error = make_error(
                ErrorType.INTERNAL_ERROR, f"The preview stopped: {type(exc).__name__}"
            )
            run_record_result(run=run, result=SandboxResult(ok=False, action=action, error=error))
            raise
        run_record_result(run=run, result=result)
    timer.mark("record")
    return run


def _preview_admit(*, user, **fields: Any) -> Run:
    """Record a preview as running, or as refused (TooManyRuns) when its user already has
    SANDBOX_MAX_PER_USER previews running or everyone SANDBOX_MAX_TOTAL.

    Counted from the database, so the caps hold across web processes. Counting and recording
    are one transaction that admissions take one at a time: SQLite's transactions begin
    IMMEDIATE (settings), PostgreSQL takes a transaction-level advisory lock.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADMISSION_LOCK])
        running = selectors.running_previews().aggregate(
            total=Count("pk"), mine=Count("pk", filter=Q(user=user))
        )
        now = timezone.now()
        refusal = None
        if user is not None and running["mine"] >= settings.SANDBOX_MAX_PER_USER:
            refusal = f"{running['mine']} of your runs are running; wait or cancel one"
        elif running["total"] >= settings.SANDBOX_MAX_TOTAL:
            refusal = (
                f"The server is busy: {running['total']} runs are running; try again in a moment"
            )
        if refusal is None:
            return Run.objects.create(status=RunStatus.RUNNING, started_at=now, user=user, **fields)
        run = Run(
            status=RunStatus.FAILED,
            started_at=now,
            finished_at=now,
            duration_ms=0,
            user=user,
            **fields,
        )
        run.set_error(make_error(ErrorType.TOO_MANY_RUNS, refusal))
        run.save()
        return run


def run_record_result(*, run: Run, result: SandboxResult) -> None:
    """Store what the sandbox returned on the run, bounded (result_bounded), and finish it."""
    run.status = (
        RunStatus.SUCCEEDED
        if result.ok
        else STATUS_FOR_ERROR.get(error_type(result.error), RunStatus.FAILED)
    )
    cell_bytes = settings.PREVIEW_MAX_CELL_BYTES
    run.result = result_bounded(
        result.result, cell_bytes=cell_bytes, result_bytes=settings.PREVIEW_MAX_RESULT_BYTES
    )
    run.logs = result.logs
    error = result.error
    if error:
        # A user exception's message is as long as the user likes; so is a traceback line.
        error = {
            **error,
            "message": cap_text(error.get("message") or "", cell_bytes),
            "traceback": cap_text(
                "\n".join(
                    cap_text(line, cell_bytes)
                    for line in (error.get("traceback") or "").split("\n")
                ),
                10 * cell_bytes,
                keep="tail",  # the innermost frames and the message
            ),
        }
    run.set_error(error)
    run.isolation = result.isolation
    run.duration_ms = result.duration_ms
    run.finished_at = timezone.now()
    run.save()


def connector_tests_run(
    *,
    connector: Connector,
    user=None,
    code: str | None = None,
    max_objects: int | None = None,
    timeout_s: float | None = None,
    wait_for_environment: bool = True,
) -> Run:
    """Run a connector's test_* functions in the sandbox (saved code, or `code`); recorded as a
    run of kind "test" through the preview path (same caps, environment and masking)."""
    return preview_run(
        connector=connector,
        action=Action.TEST,
        user=user,
        code=code,
        max_objects=max_objects,
        timeout_s=timeout_s,
        wait_for_environment=wait_for_environment,
    )
