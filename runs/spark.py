"""Which Spark the app uses: SPARK_REMOTE when set, else the local Connect server, kept per process.

The server is started by the first request that needs Spark (never at start-up) and stopped when
this process exits.
"""

from __future__ import annotations

import ast
import atexit
import threading
from typing import Any

from django.conf import settings

from runs.runtime.spark_server import LocalSparkServer

_lock = threading.Lock()
_server: LocalSparkServer | None = None


def local_server() -> LocalSparkServer:
    """Return this process's local Spark Connect server manager (not started by this call)."""
    global _server
    with _lock:
        if _server is None:
            _server = LocalSparkServer(
                settings.SPARK_DIR,
                master=settings.SPARK_MASTER,
                driver_memory=settings.SPARK_DRIVER_MEMORY,
                ready_timeout_s=settings.SPARK_START_TIMEOUT_S,
                max_memory_mb=settings.SPARK_MAX_MEMORY_MB,
            )
        return _server


def spark_remote() -> str:
    """Return the Spark Connect URL to use, starting the local server when it is not up."""
    if settings.SPARK_REMOTE:
        return settings.SPARK_REMOTE
    return local_server().remote()


def spark_status() -> dict[str, Any]:
    """Say which Spark is in use and whether it is up (for the UI; never starts a server)."""
    if settings.SPARK_REMOTE:
        host = settings.SPARK_REMOTE.split(";", 1)[0].rstrip("/")
        return {"kind": "remote", "label": f"Spark Connect at {host}", "up": None}
    server = _server
    up = server is not None and server.is_up()
    label = f"local Spark Connect server ({settings.SPARK_MASTER})"
    return {"kind": "local", "label": label, "up": up}


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
    """Stop the local server if this process started one."""
    server = _server
    if server is not None:
        server.stop()


atexit.register(stop_local_server)
