"""/healthz: whether this installation can do its work, for load balancers and monitors.

GET, no login, never cached, no writes. 200 with {"status": "ok"} when the database answers
within DATABASE_TIMEOUT_S and at least one queue worker beat recently
(runs.selectors.worker_status); 503 with {"status": "unavailable"} otherwise. Spark is reported
(the local server up, starting or not started; or a remote one and whether it accepts
connections) but never makes the site unavailable: only Spark connectors need it, and every web
server shares it, so a load balancer that took them all out would stop everything else too.
Error details are logged, not shown: the answer names only the kind of error.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from connectors_site import engine_config
from runs.selectors import worker_status

logger = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 3.0
SPARK_CONNECT_TIMEOUT_S = 1.0
SPARK_DEFAULT_PORT = 15002


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health_report()
    response = JsonResponse(report, status=200 if report["status"] == "ok" else 503)
    # health_report logged why; Django would add an error line per probe (django.request).
    response._has_been_logged = True
    return response


def health_report() -> dict[str, Any]:
    """The checks and the verdict: ok when the database answers and a worker is alive."""
    database = database_check()
    worker = worker_check() if database["ok"] else {"ok": False, "error": "no database"}
    checks = {"database": database, "worker": worker, "spark": spark_check()}
    status = "ok" if database["ok"] and worker["ok"] else "unavailable"
    return {"status": status, "checks": checks}


def database_check() -> dict[str, Any]:
    """Run SELECT 1 (on PostgreSQL within a statement timeout; a connection that cannot be made
    fails as fast as the driver gives up: PGCONNECT_TIMEOUT)."""
    started = time.monotonic()
    try:
        if connection.vendor == "postgresql":
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [int(DATABASE_TIMEOUT_S * 1000)])
                cursor.execute("SELECT 1")
                cursor.fetchone()
        else:  # SQLite: no transaction (they begin IMMEDIATE here, taking the write lock)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health check: the database did not answer: %s", exc)
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor, "duration_ms": _since(started)}


def worker_check() -> dict[str, Any]:
    """How many queue workers beat recently, and the latest beat."""
    try:
        status = worker_status()
    except DatabaseError as exc:
        logger.warning("Health check: reading the workers' heartbeats failed: %s", exc)
        return {"ok": False, "error": type(exc).__name__}
    last = status["last_beat_at"]
    return {
        "ok": status["alive"] > 0,
        "alive": status["alive"],
        "last_beat_at": last.isoformat() if last else None,
    }


def spark_check() -> dict[str, Any]:
    """The Spark in use: a remote one (and whether it accepts connections) or the local server
    (up, starting or not started); informational."""
    if settings.SPARK_REMOTE:
        return {"ok": True, "kind": "remote", "reachable": _remote_reachable(settings.SPARK_REMOTE)}
    status = engine_config.spark_status()
    state = "up" if status["up"] else "starting" if status["starting"] else "not started"
    report = {"ok": True, "kind": "local", "state": state, "isolation": status["isolation"]}
    if status.get("error"):
        logger.warning("Health check: the local Spark server did not start: %s", status["error"])
        report["error"] = "the last start failed"
    return report


def _remote_reachable(remote: str) -> bool:
    """Whether the Spark Connect URL's host accepts a TCP connection (its token is not used)."""
    parts = urlsplit(remote.split(";", 1)[0])
    try:
        address = (parts.hostname or "", parts.port or SPARK_DEFAULT_PORT)
        with socket.create_connection(address, SPARK_CONNECT_TIMEOUT_S):
            return True
    except (OSError, ValueError) as exc:  # ValueError: a port that is not a number
        logger.warning("Health check: Spark Connect at %s: %s", parts.netloc, exc)
        return False


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
