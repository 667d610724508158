"""Writes to runs: run a preview in the sandbox and record it as a Run row."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.utils import timezone

from connections.models import CodeVersion, Connector, code_fingerprint
from runs import runtime
from runs.models import Run, RunStatus

# Process-level failures the runtime reports with these error types map to these statuses.
_STATUS_FOR_ERROR = {"Timeout": RunStatus.TIMED_OUT}

_sandbox_configured = threading.Lock()
_configured = False


def sandbox_hidden_paths() -> list[str]:
    """Paths user code must never see: the data directory, the database, the settings."""
    paths = [str(settings.DATA_DIR), str(settings.BASE_DIR / "connectors_site")]
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        paths.append(str(database["NAME"]))
    return paths


def _ensure_sandbox_configured() -> None:
    global _configured
    with _sandbox_configured:
        if not _configured:
            runtime.configure_default_sandbox(hidden_paths=sandbox_hidden_paths())
            _configured = True


def preview_limits(**overrides: Any) -> runtime.Limits:
    """The sandbox limits for a preview, from settings, with per-request overrides."""
    limits = runtime.Limits(
        timeout_s=settings.PREVIEW_TIMEOUT_S,
        memory_mb=settings.SANDBOX_MEMORY_MB,
        row_limit=settings.PREVIEW_ROW_LIMIT,
        max_objects=settings.PREVIEW_MAX_OBJECTS,
    )
    return replace(limits, **{k: v for k, v in overrides.items() if v is not None})


def execute(request: runtime.SandboxRequest) -> runtime.SandboxResult:
    """Run one request in the sandbox (never in this process)."""
    _ensure_sandbox_configured()
    return runtime.run_action(request)


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
    request = runtime.SandboxRequest(
        action=action,
        code=code,
        library_code=connector.connection.library_code,
        interface=interface,
        parser=parser or None,
        credentials=connector.connection.decrypted_credentials(),
        object=object,
        limits=preview_limits(row_limit=row_limit, max_objects=max_objects, timeout_s=timeout_s),
    )
    result = execute(request)
    run_record_result(run=run, result=result)
    return run


def run_record_result(*, run: Run, result: runtime.SandboxResult) -> None:
    """Store what the sandbox returned on the run and finish it."""
    error = result.error or {}
    run.status = (
        RunStatus.SUCCEEDED
        if result.ok
        else _STATUS_FOR_ERROR.get(error.get("type", ""), RunStatus.FAILED)
    )
    run.result = result.result
    run.logs = result.logs
    run.error_type = error.get("type") or ""
    run.error_message = error.get("message") or ""
    run.error_function = error.get("function") or ""
    run.error_line = error.get("line")
    run.error_traceback = error.get("traceback") or ""
    run.isolation = result.isolation
    run.duration_ms = result.duration_ms
    run.finished_at = timezone.now()
    run.save()
