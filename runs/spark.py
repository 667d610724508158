"""Which Spark the app uses: SPARK_REMOTE when set, else the local Connect server under SPARK_DIR.

The local server is started by the first request that needs Spark (never at start-up), shared by
every process of this installation (web, worker: connector_engine.spark), and stopped when the
process that started it exits. It runs under bubblewrap where available: it sees none of DATA_DIR
but its own working directories, ENVIRONMENTS_DIR (read-only) and SPARK_STAGING_DIR (writable).

`spark_remote()` is the plain URL (for trusted code). Requests that run user code lease one of
SPARK_SESSION_POOL stable session ids instead (`spark_session_lease()`, runs.runtime.
spark_sessions), which bounds the Python workers the server keeps per session (SPARK-54055).
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from connector_engine.spark.server import LocalSparkServer
from connector_engine.spark.sessions import SessionLease, SessionPool

_lock = threading.Lock()
_server: LocalSparkServer | None = None


def local_server() -> LocalSparkServer:
    """Return this process's local Spark Connect server manager (not started by this call)."""
    global _server
    from runs.services import sandbox_hidden_paths  # services imports this module

    with _lock:
        if _server is None:
            _server = LocalSparkServer(
                settings.SPARK_DIR,
                master=settings.SPARK_MASTER,
                driver_memory=settings.SPARK_DRIVER_MEMORY,
                ready_timeout_s=settings.SPARK_START_TIMEOUT_S,
                max_memory_mb=settings.SPARK_MAX_MEMORY_MB,
                hidden_paths=sandbox_hidden_paths(),
                readonly_paths=[settings.ENVIRONMENTS_DIR],
                writable_paths=[settings.SPARK_STAGING_DIR],
            )
        return _server


def spark_remote() -> str:
    """Return the Spark Connect URL to use, starting the local server when it is not up."""
    if settings.SPARK_REMOTE:
        return settings.SPARK_REMOTE
    return local_server().remote()


def session_pool() -> SessionPool:
    """Return the pool of Spark Connect session ids this installation's processes share."""
    return SessionPool(settings.SPARK_DIR / "sessions", settings.SPARK_SESSION_POOL)


@contextlib.contextmanager
def spark_session_lease(*, wait_timeout_s: float | None = None) -> Iterator[SessionLease]:
    """Lease a pooled session on the Spark in use; `lease.url` is its URL with `session_id`.

    Raises SparkServerError when the local server cannot start and SessionPoolBusy when no
    session frees up within `wait_timeout_s`.
    """
    remote = spark_remote()
    with session_pool().lease(remote, wait_timeout_s) as lease:
        yield lease


def spark_status() -> dict[str, Any]:
    """Say which Spark is in use, whether it is up and how isolated (for the UI; never starts)."""
    if settings.SPARK_REMOTE:
        host = settings.SPARK_REMOTE.split(";", 1)[0].rstrip("/")
        return {
            "kind": "remote",
            "label": f"Spark Connect at {host}",
            "up": None,
            "isolation": "remote",
        }
    server = local_server()
    label = f"local Spark Connect server ({settings.SPARK_MASTER})"
    if not server.use_bwrap:
        label = f"local Spark Connect server ({settings.SPARK_MASTER}, reduced isolation)"
    return {"kind": "local", "label": label, "up": server.is_up(), "isolation": server.isolation}


def needs_spark(*, action: str, interface: str, code: str) -> bool:
    """Say whether a request will use `spark`: a spark read or schema, or infer_schema(spark)."""
    if action not in ("read", "schema"):
        return False
    if interface == "spark":
        return True
    return action == "schema" and _infer_schema_asks_spark(code)


def _infer_schema_asks_spark(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "infer_schema":
            args = node.args
            names = {a.arg for a in args.args + args.kwonlyargs}
            return "spark" in names  # **kwargs never receives spark (bound by name)
    return False


def stop_local_server() -> None:
    """Stop the local server if this process started it (another process may still use it)."""
    server = _server
    if server is not None:
        server.stop_if_owned()


def _stop_at_exit() -> None:
    """Stop the local server at exit without being cut short: a second Ctrl-C or SIGTERM (make
    run sends both) would otherwise raise inside the stop and leave the server behind."""
    if _server is None:
        return
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop_local_server()


atexit.register(_stop_at_exit)
