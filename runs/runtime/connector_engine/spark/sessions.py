"""A small pool of stable Spark Connect session ids, leased across processes.

Spark Connect servers keep Python worker daemons per session and never free them when the
session ends (SPARK-54055), so a session per preview grows the server without bound. Instead,
requests lease one of `size` slots; each slot holds a session id (a uuid) that every request
leasing it reuses, so the server never sees more than `size` sessions from this app.

Decisions:
- A slot is a file DIRECTORY/slot-N (0600) holding its uuid, leased with an exclusive flock: one
  request at a time uses a session, in whichever process (web, worker). `lease()` tries each
  slot without blocking, lowest first (so few sessions stay warm), then polls until
  `wait_timeout_s` and raises SessionPoolBusy. A process that dies releases its flocks.
- The URL carries `session_id=<uuid>` and a fixed `user_id` (the server keys sessions by both,
  and the sandbox's cleared environment has no $USER), so every client of a slot, the sandboxed
  child and `interrupt_session` alike, lands in the same session.
- A leased session is never released by its client (a released id is closed for good: the
  server answers INVALID_HANDLE.SESSION_CLOSED). The child resets what another run could have
  left before user code gets the session (`reset_pooled_session` in the child). When the
  server reports the session closed or expired anyway, `rotate()` gives the slot a new uuid.
- After a sandboxed client was killed (timeout, cancel, limits), the server would go on running
  its query: `interrupt_then_release()` interrupts everything the leased session runs, from a
  short subprocess (the caller stays free of pyspark) in a thread that keeps the slot leased
  until that is done, so the caller returns at once and no other request gets a busy session.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

USER_ID = "connector-studio"
WAIT_POLL_S = 0.05
INTERRUPT_TIMEOUT_S = 30.0
# Interrupts every operation of the session in SPARK_REMOTE_URL, without releasing it.
INTERRUPT_SESSION = """
import os, warnings
warnings.simplefilter("ignore")
from pyspark.sql.connect.session import SparkSession
spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE_URL"]).create()
spark.interruptAll()
spark.client.close()
"""


class SessionPoolBusy(Exception):
    """Every session of the pool stayed leased for the whole wait."""


def url_with_session(remote: str, session_id: str) -> str:
    """Return a Spark Connect URL with `session_id` (and a user_id when it has none)."""
    base, _, params = remote.partition(";")
    kept = [p for p in params.split(";") if p and not p.startswith("session_id=")]
    if not any(p.startswith("user_id=") for p in kept):
        kept.append(f"user_id={USER_ID}")
    kept.append(f"session_id={session_id}")
    base = base if base.endswith("/") else base + "/"
    return base + ";" + ";".join(kept)


class SessionLease:
    """One leased slot: its session id, and the URL of that session on `remote`."""

    def __init__(self, path: Path, fd: int, remote: str) -> None:
        self.path = path
        self.remote = remote
        self._fd = fd
        self._kept = False  # an interrupt thread keeps the slot
        self._release_lock = threading.Lock()
        self.session_id = self._read_or_rotate()

    @property
    def url(self) -> str:
        return url_with_session(self.remote, self.session_id)

    def rotate(self) -> None:
        """Give the slot a new session id (the old one was closed or expired on the server)."""
        self.session_id = str(uuid.uuid4())
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, self.session_id.encode(), 0)

    def interrupt_then_release(self) -> threading.Thread:
        """Interrupt the session's operations from a thread that keeps the slot until done.

        The caller returns at once; the slot is released (and may be leased again) only once the
        orphaned query is interrupted. `release()` does nothing until then.
        """
        self._kept = True

        def interrupt() -> None:
            try:
                interrupt_session(self.url)
            finally:
                self._kept = False
                self.release()

        thread = threading.Thread(target=interrupt, name="spark-session-interrupt", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Release the slot (idempotent; deferred while an interrupt keeps it)."""
        with self._release_lock:
            if self._kept:
                return
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)  # releases the flock

    def _read_or_rotate(self) -> str:
        text = os.pread(self._fd, 100, 0).decode(errors="replace").strip()
        try:
            return str(uuid.UUID(text))
        except ValueError:
            self.rotate()
            return self.session_id


class SessionPool:
    """`size` session slots under `directory`, shared by every process that uses it."""

    def __init__(
        self, directory: str | os.PathLike[str], size: int, wait_timeout_s: float = 30.0
    ) -> None:
        if size < 1:
            raise ValueError("a session pool needs at least one slot")
        self.directory = Path(directory)
        self.size = size
        self.wait_timeout_s = wait_timeout_s

    @contextlib.contextmanager
    def lease(self, remote: str, wait_timeout_s: float | None = None) -> Iterator[SessionLease]:
        """Lease a free slot for a session on `remote`; raise SessionPoolBusy after the wait."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        timeout = self.wait_timeout_s if wait_timeout_s is None else wait_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            lease = self._try_lease(remote)
            if lease is not None:
                break
            if time.monotonic() >= deadline:
                raise SessionPoolBusy(
                    f"all {self.size} Spark sessions stayed in use for {timeout:g} s"
                )
            time.sleep(WAIT_POLL_S)
        try:
            yield lease
        finally:
            lease.release()

    def _try_lease(self, remote: str) -> SessionLease | None:
        for number in range(self.size):
            path = self.directory / f"slot-{number}"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return SessionLease(path, fd, remote)
        return None


def interrupt_session(url: str, timeout_s: float = INTERRUPT_TIMEOUT_S) -> bool:
    """Interrupt every operation the session in `url` runs; say whether that worked."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SPARK_REMOTE_URL": url,  # not an argument: `ps` would show the token
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", INTERRUPT_SESSION],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0
