"""Start the local Spark Connect server in the background, so a page never waits for it.

Opening a spark connector's editor starts the server when it is not up; the page then polls its
status. `SparkStarter.start()` runs `LocalSparkServer.remote()` in one daemon thread per process
at a time; across processes the server's own flock (`LocalSparkServer.lock_path`, held while a
server starts) makes one process start it and the others find it running. `start_in_progress`
tells, without waiting, whether any process is starting one now. Plain Python, no Django import.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time

from connector_engine.spark.server import LocalSparkServer, SparkServerError


def start_in_progress(server: LocalSparkServer) -> bool:
    """Say whether some process (this one included) holds the server's control lock now: it is
    starting, restarting or stopping a server. Never waits."""
    try:
        fd = os.open(server.lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False  # no process ever started one here
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


class SparkStarter:
    """Starts one LocalSparkServer in a background thread; thread-safe, one start at a time."""

    def __init__(self, server: LocalSparkServer) -> None:
        self.server = server
        self.error = ""  # why the last background start failed ("" when it did not)
        self._started_at: float | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def starting(self) -> bool:
        """Say whether this process's background start is still running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def elapsed_s(self) -> int | None:
        """Whole seconds since this process's running start began; None when none runs."""
        started = self._started_at
        if started is None or not self.starting:
            return None
        return int(time.monotonic() - started)

    def start(self) -> bool:
        """Start the server in the background unless this process is already starting it;
        return whether this call began a start. `remote()` does nothing when one is up."""
        with self._lock:
            if self.starting:
                return False
            self.error = ""
            self._started_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="spark-start", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait for a running background start to end (for tests and shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self.server.remote()
        except SparkServerError as exc:
            self.error = str(exc)
        except Exception as exc:  # a thread's exception would only reach stderr
            self.error = f"{type(exc).__name__}: {exc}"
