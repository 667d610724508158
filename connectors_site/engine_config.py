"""Settings into engine configuration: the one module that builds the engine's objects.

The engine (connector_engine) reads no settings; Django apps never build engine objects from
settings themselves. They ask here for the sandbox registry, the limits of each kind of request,
the paths user code must not see, the environment store and the Spark server and sessions.
Nothing is created when this module is imported; process-wide objects are created on first use.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings

from connector_engine import engine_version
from connector_engine.environments.build import BuildLimits
from connector_engine.environments.store import EnvironmentStore
from connector_engine.protocol import Limits
from connector_engine.sandbox.registry import SandboxRegistry
from connector_engine.spark.server import LocalSparkServer
from connector_engine.spark.sessions import SessionLease, SessionPool
from connector_engine.spark.starter import SparkStarter, start_in_progress

_lock = threading.Lock()
_registry: SandboxRegistry | None = None
_spark_server: LocalSparkServer | None = None
_spark_starter: SparkStarter | None = None


def hidden_paths() -> list[str]:
    """Paths user code must never see, wherever the settings put them: the data directory, the
    database, the settings, the key and secret files, ingested partitions, every connection's
    environments, Spark's state and staging, and the server user's home."""
    paths = [
        settings.DATA_DIR,
        settings.BASE_DIR / "connectors_site",
        settings.CREDENTIALS_KEYS_FILE,
        *settings.SECRET_FILES,
        settings.PARTITIONS_DIR,
        settings.ENVIRONMENTS_DIR,
        settings.SPARK_DIR,
        settings.SPARK_STAGING_DIR,
    ]
    # A PARTITIONS_URL without a scheme is a local directory (runs.storage.location). An S3
    # store's keys are settings, which user code never gets.
    partitions_url = str(getattr(settings, "PARTITIONS_URL", "") or "").strip()
    if partitions_url and "://" not in partitions_url:
        paths.append(partitions_url)
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        paths.append(database["NAME"])
    # The server user's home (its .netrc, SSH and cloud keys, pip configuration), unless the app
    # itself lives there (a checkout in ~): the sandbox keeps the interpreter and the engine
    # visible inside a hidden directory, not the app's example files.
    home = Path.home()
    if not Path(settings.BASE_DIR).is_relative_to(home):
        paths.append(home)
    unique = dict.fromkeys(str(path) for path in paths)
    return list(unique)


def sandboxes() -> SandboxRegistry:
    """This process's warm sandboxes (base and package environments), created on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = SandboxRegistry(
                hidden_paths=hidden_paths(),
                readable_paths=[str(path) for path in settings.SANDBOX_READABLE_PATHS],
                idle_s=settings.ENVIRONMENT_WORKER_IDLE_S,
            )
        return _registry


def preview_limits(**overrides: Any) -> Limits:
    """The sandbox limits of a preview, with per-request overrides (None keeps the setting)."""
    limits = Limits(
        timeout_s=settings.PREVIEW_TIMEOUT_S,
        memory_mb=settings.SANDBOX_MEMORY_MB,
        tmp_mb=settings.SANDBOX_TMP_MB,
        row_limit=settings.PREVIEW_ROW_LIMIT,
        profile_row_budget=settings.PREVIEW_PROFILE_ROW_BUDGET,
        max_objects=settings.PREVIEW_MAX_OBJECTS,
    )
    return replace(limits, **{k: v for k, v in overrides.items() if v is not None})


# The most rows a preview may ask for (PREVIEW_ROW_LIMIT is the default, unless it is larger).
PREVIEW_MAX_ROW_LIMIT = 10_000


@dataclass(frozen=True)
class PreviewBounds:
    """What a person may set for one preview (the editor's inputs, the API): each limit's
    default and the most it may be. The timeout and the object limit may only be lowered."""

    row_limit: int
    max_row_limit: int
    max_objects: int
    timeout_s: float
    min_timeout_s: float = 0.1


def preview_bounds() -> PreviewBounds:
    """The bounds of a preview's limits, from the settings."""
    return PreviewBounds(
        row_limit=settings.PREVIEW_ROW_LIMIT,
        max_row_limit=max(PREVIEW_MAX_ROW_LIMIT, settings.PREVIEW_ROW_LIMIT),
        max_objects=settings.PREVIEW_MAX_OBJECTS,
        timeout_s=settings.PREVIEW_TIMEOUT_S,
    )


def ingest_limits() -> Limits:
    """The sandbox limits of one partition read of an ingest."""
    timeout = settings.INGEST_TIMEOUT_S
    return Limits(
        timeout_s=timeout,
        cpu_s=max(60, int(timeout) + 1),
        memory_mb=settings.SANDBOX_MEMORY_MB,
        tmp_mb=settings.SANDBOX_TMP_MB,
        row_limit=settings.PREVIEW_ROW_LIMIT,
        max_objects=settings.INGEST_MAX_OBJECTS,
    )


def listing_limits() -> Limits:
    """The sandbox limits of an ingest's listing: every leaf, up to INGEST_MAX_OBJECTS."""
    timeout = settings.INGEST_LIST_TIMEOUT_S
    return replace(ingest_limits(), timeout_s=timeout, cpu_s=max(60, int(timeout) + 1))


def environment_store() -> EnvironmentStore:
    """The package environments directory, with pip configured from settings."""
    return EnvironmentStore(
        settings.ENVIRONMENTS_DIR,
        pip_args=settings.ENVIRONMENT_PIP_ARGS,
        timeout_s=settings.ENVIRONMENT_BUILD_TIMEOUT_S,
        hidden_paths=hidden_paths(),
        limits=BuildLimits(
            tmp_mb=settings.ENVIRONMENT_BUILD_TMP_MB,
            memory_mb=settings.ENVIRONMENT_BUILD_MEMORY_MB,
            resolve_timeout_s=settings.ENVIRONMENT_RESOLVE_TIMEOUT_S,
            max_size_mb=settings.ENVIRONMENT_MAX_MB,
        ),
    )


def spark_server() -> LocalSparkServer:
    """This process's manager of the local Spark Connect server (not started by this call)."""
    global _spark_server
    with _lock:
        if _spark_server is None:
            _spark_server = LocalSparkServer(
                settings.SPARK_DIR,
                master=settings.SPARK_MASTER,
                driver_memory=settings.SPARK_DRIVER_MEMORY,
                ready_timeout_s=settings.SPARK_START_TIMEOUT_S,
                max_memory_mb=settings.SPARK_MAX_MEMORY_MB,
                session_idle_s=settings.SPARK_SESSION_IDLE_S,
                hidden_paths=hidden_paths(),
                readonly_paths=[settings.ENVIRONMENTS_DIR],
                writable_paths=[settings.SPARK_STAGING_DIR],
                readable_paths=settings.SANDBOX_READABLE_PATHS,
            )
        return _spark_server


def spark_remote() -> str:
    """The Spark Connect URL to use: SPARK_REMOTE, or the local server (started when down)."""
    if settings.SPARK_REMOTE:
        return settings.SPARK_REMOTE
    return spark_server().remote()


def spark_sessions() -> SessionPool:
    """The Spark Connect sessions of this installation, shared by its processes and tenants.

    SPARK_MAX_SESSIONS in all, at most SPARK_SESSION_POOL of one tenant (a connection) at once;
    a session one tenant's code used is never leased to another (Spark keeps Python workers,
    their working directory and what code leaves there per session), and one idle for
    SPARK_SESSION_IDLE_S is ended. Per engine version: an ingest adds the engine to its session
    as an artifact, and a session that outlives an upgrade (a cluster's) must not offer Spark two
    engines.
    """
    return SessionPool(
        settings.SPARK_DIR / "sessions" / engine_version(),
        settings.SPARK_MAX_SESSIONS,
        per_tenant=settings.SPARK_SESSION_POOL,
        idle_s=settings.SPARK_SESSION_IDLE_S,
    )


@contextlib.contextmanager
def spark_session_lease(
    *, tenant: str, wait_timeout_s: float | None = None
) -> Iterator[SessionLease]:
    """Lease one of `tenant`'s sessions on the Spark in use; `lease.url` is its URL with
    `session_id`.

    Raises SparkServerError when the local server cannot start and SessionPoolBusy when no
    session frees up within `wait_timeout_s`.
    """
    with spark_sessions().lease(spark_remote(), wait_timeout_s, tenant=tenant) as lease:
        yield lease


def spark_starter() -> SparkStarter:
    """This process's background starter of the local Spark Connect server."""
    global _spark_starter
    server = spark_server()
    with _lock:
        if _spark_starter is None or _spark_starter.server is not server:
            _spark_starter = SparkStarter(server)
        return _spark_starter


def spark_start() -> None:
    """Start the local Spark Connect server in the background when it is not up (a spark
    connector was opened); never waits. Nothing with SPARK_REMOTE or without
    SPARK_START_ON_OPEN."""
    if settings.SPARK_REMOTE or not settings.SPARK_START_ON_OPEN:
        return
    starter = spark_starter()
    # While a start runs, is_up() would wait for it: ask the control lock first.
    if starter.starting or start_in_progress(starter.server) or starter.server.is_up():
        return
    starter.start()


def spark_status(server: LocalSparkServer | None = None) -> dict[str, Any]:
    """Say which Spark is in use, whether it is up, starting (for how long, or why it did not
    start) and how isolated (for pages; never starts, never waits for a start).

    `server` is the local server's manager to describe (default: this process's).
    """
    if settings.SPARK_REMOTE:
        host = settings.SPARK_REMOTE.split(";", 1)[0].rstrip("/")
        return {
            "kind": "remote",
            "label": f"Spark Connect at {host}",
            "up": None,
            "starting": False,
            "isolation": "remote",
        }
    server = server or spark_server()
    label = f"local Spark Connect server ({settings.SPARK_MASTER})"
    if not server.use_bwrap:
        label = f"local Spark Connect server ({settings.SPARK_MASTER}, reduced isolation)"
    starter = _spark_starter if _spark_starter and _spark_starter.server is server else None
    status = {"kind": "local", "label": label, "isolation": server.isolation, "error": ""}
    if (starter and starter.starting) or start_in_progress(server):
        elapsed = starter.elapsed_s() if starter else None
        return status | {"up": False, "starting": True, "elapsed_s": elapsed}
    up = server.is_up()
    error = "" if up or starter is None else starter.error
    return status | {"up": up, "starting": False, "error": error}


def spark_stop_if_owned() -> None:
    """Stop the local server if this process started (or adopted) it, at exit (atexit, and
    gunicorn's worker_exit), without being cut short: a second Ctrl-C or SIGTERM (make run sends
    both) or gunicorn's SIGQUIT would otherwise raise inside the stop and leave it behind."""
    server = _spark_server
    if server is None:
        return
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(number, signal.SIG_IGN)
    server.stop_if_owned()


atexit.register(spark_stop_if_owned)
