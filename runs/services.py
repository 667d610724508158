"""Writes to runs: previews, run in the sandbox and recorded as Run rows.

`run_in_sandbox` is the one gateway to the sandbox for Django code (previews and ingests alike).
Ingests have their own services: runs.ingest.services.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from django.utils import timezone

from connections.models import CodeVersion, Connector, code_fingerprint
from connector_engine.contract import needs_spark
from connector_engine.environments.store import ReadyEnvironment
from connector_engine.protocol import (
    CHILD_KILLED,
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
from environments.services import connector_environment_ensure
from runs.models import STATUS_FOR_ERROR, Run, RunStatus


def run_in_sandbox(
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
    object: dict[str, Any] | None = None,
    credentials: str | None = None,
) -> SandboxRequest:
    """Return a sandbox request for a connector: its saved code, or the code, interface and
    parser given (the editor's unsaved ones), with its connection's library and credentials."""
    return SandboxRequest(
        action=action,
        code=connector.code if code is None else code,
        library_code=connector.connection.library_code,
        interface=interface or connector.interface,
        parser=(connector.parser if parser is None else parser) or None,
        credentials=(
            connector.connection.decrypted_credentials() if credentials is None else credentials
        ),
        object=object,
        limits=limits,
    )


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
    request = connector_request(
        connector,
        action=action,
        limits=engine_config.preview_limits(
            row_limit=row_limit, max_objects=max_objects, timeout_s=timeout_s
        ),
        code=code,
        interface=interface,
        parser=parser,
        object=object,
    )
    environment = connector_environment_ensure(connector=connector)  # may build it: waits
    run.parameters["environment"] = environment.key
    if environment.ok:
        result = run_in_sandbox(request, environment=environment.ready)
    else:
        result = SandboxResult(ok=False, action=action, error=environment.run_error())
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
