"""The Spark Connect sessions of an installation: a bounded set of slots, each owned by one
tenant at a time, leased across processes.

Spark Connect servers keep Python worker daemons per session and never free them (SPARK-54055),
so a session per preview would grow the server without bound, and so would a pool per tenant,
with the number of tenants. Instead the installation has `size` slots in all; each holds one
tenant's session id (a uuid) that the tenant's requests reuse, so the server never holds more
than `size` sessions of this app at once.

Decisions:
- A slot is a file DIRECTORY/slot-N (0600) holding its tenant, its session id and when its last
  lease ended (JSON; empty: never used), leased with an exclusive flock: one request at a time
  uses a session, in whichever process (web, worker). A process that dies releases its flocks.
- A session one tenant's code used is never leased to another: Spark keeps its Python workers,
  their working directory and what code leaves there per session. `lease(remote, tenant=...)`
  takes, without blocking, the first it can of: a free slot of the tenant's, lowest first (so
  few sessions stay warm); while the tenant holds fewer than `per_tenant` slots, a never-used
  slot, then the free slot of another tenant whose last lease ended longest ago, evicted: its
  session is released on the server (from a thread, by a short subprocess) and the slot gets a
  new id for its new tenant. Otherwise it polls until `wait_timeout_s` and raises
  SessionPoolBusy. A choice made from the slots as read is checked again under the slot's flock
  (another process may have taken or changed it); two processes may both let one tenant take
  its last allowed slot, so `per_tenant` can be passed by one, never `size`.
- Idle sessions are released by the server: the local one ends a session that got no request
  for `idle_s` (spark.connect.session.manager.defaultSessionTimeout, set by
  connector_engine.spark.server; a cluster given by SPARK_REMOTE applies its own timeout). A slot
  whose last lease ended longer ago than `idle_s` gets a new id when it is next leased, so
  nobody is handed a session the server already closed; no periodic task is needed.
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
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

USER_ID = "connector-studio"
WAIT_POLL_S = 0.05
CLIENT_TIMEOUT_S = 30.0
# Interrupts every operation of the session in SPARK_REMOTE_URL, without releasing it.
INTERRUPT_SESSION = """
import os, warnings
warnings.simplefilter("ignore")
from pyspark.sql.connect.session import SparkSession
spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE_URL"]).create()
spark.interruptAll()
spark.client.close()
"""
# Releases the session in SPARK_REMOTE_URL on the server (its id is closed for good).
RELEASE_SESSION = """
import os, warnings
warnings.simplefilter("ignore")
from pyspark.sql.connect.session import SparkSession
SparkSession.builder.remote(os.environ["SPARK_REMOTE_URL"]).create().stop()
"""


class SessionPoolBusy(Exception):
    """Every session the tenant may use stayed leased for the whole wait."""


def url_with_session(remote: str, session_id: str) -> str:
    """Return a Spark Connect URL with `session_id` (and a user_id when it has none)."""
    base, _, params = remote.partition(";")
    kept = [p for p in params.split(";") if p and not p.startswith("session_id=")]
    if not any(p.startswith("user_id=") for p in kept):
        kept.append(f"user_id={USER_ID}")
    kept.append(f"session_id={session_id}")
    base = base if base.endswith("/") else base + "/"
    return base + ";" + ";".join(kept)


@dataclass(frozen=True)
class Slot:
    """What a slot file holds: whose session it is, its id, when its last lease ended (epoch s)."""

    tenant: str = ""
    session_id: str = ""
    last_used: float = 0.0

    @classmethod
    def read(cls, fd: int) -> Slot:
        """The slot in an open slot file; a never-used (or unreadable) one is empty."""
        try:
            data = json.loads(os.pread(fd, 4096, 0))
            session_id = str(uuid.UUID(data["session_id"]))
            return cls(str(data["tenant"]), session_id, float(data["last_used"]))
        except (ValueError, KeyError, TypeError):
            return cls()

    @property
    def used(self) -> bool:
        return bool(self.session_id)

    def write(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(self)).encode(), 0)


class SessionLease:
    """One leased slot: its tenant's session id, and the URL of that session on `remote`."""

    def __init__(self, path: Path, fd: int, remote: str, tenant: str, session_id: str) -> None:
        self.path = path
        self.remote = remote
        self.tenant = tenant
        self.session_id = session_id
        self._fd = fd
        self._kept = False  # an interrupt thread keeps the slot
        self._release_lock = threading.Lock()

    @property
    def url(self) -> str:
        return url_with_session(self.remote, self.session_id)

    def rotate(self) -> None:
        """Give the slot a new session id (the old one was closed or expired on the server)."""
        self.session_id = str(uuid.uuid4())
        self._write()

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
        """Release the slot, noting when (idempotent; deferred while an interrupt keeps it)."""
        with self._release_lock:
            if self._kept or self._fd < 0:
                return
            with contextlib.suppress(OSError):
                self._write()
            fd, self._fd = self._fd, -1
        os.close(fd)  # releases the flock

    def _write(self) -> None:
        Slot(self.tenant, self.session_id, time.time()).write(self._fd)


class SessionPool:
    """`size` session slots under `directory`, shared by every tenant and process; a tenant
    holds at most `per_tenant` of them (default: all); a slot whose last lease ended more than
    `idle_s` ago (0: never) gets a new session id."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        size: int,
        *,
        per_tenant: int | None = None,
        idle_s: float = 0.0,
        wait_timeout_s: float = 30.0,
    ) -> None:
        if size < 1:
            raise ValueError("a session pool needs at least one slot")
        self.directory = Path(directory)
        self.size = size
        self.per_tenant = min(per_tenant or size, size)
        self.idle_s = idle_s
        self.wait_timeout_s = wait_timeout_s

    @contextlib.contextmanager
    def lease(
        self, remote: str, wait_timeout_s: float | None = None, *, tenant: str = ""
    ) -> Iterator[SessionLease]:
        """Lease a session of `tenant` on `remote`; raise SessionPoolBusy after the wait."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        timeout = self.wait_timeout_s if wait_timeout_s is None else wait_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            lease = self._try_lease(remote, tenant)
            if lease is not None:
                break
            if time.monotonic() >= deadline:
                raise SessionPoolBusy(
                    f"no Spark session became free for {timeout:g} s (a connection may use "
                    f"{self.per_tenant} at once, the installation {self.size})"
                )
            time.sleep(WAIT_POLL_S)
        try:
            yield lease
        finally:
            lease.release()

    def slots(self) -> list[Slot]:
        """Every slot as its file says now (without leasing any)."""
        found = []
        for number in range(self.size):
            try:
                fd = os.open(self._path(number), os.O_RDONLY)
            except FileNotFoundError:
                found.append(Slot())
                continue
            try:
                found.append(Slot.read(fd))
            finally:
                os.close(fd)
        return found

    def _path(self, number: int) -> Path:
        return self.directory / f"slot-{number}"

    def _try_lease(self, remote: str, tenant: str) -> SessionLease | None:
        slots = self.slots()
        own = [n for n, slot in enumerate(slots) if slot.used and slot.tenant == tenant]
        may_take = len(own) < self.per_tenant
        candidates = list(own)
        if may_take:
            candidates += [n for n, slot in enumerate(slots) if not slot.used]
            others = [
                (s.last_used, n) for n, s in enumerate(slots) if s.used and s.tenant != tenant
            ]
            candidates += [n for _, n in sorted(others)]
        for number in candidates:
            lease = self._try_slot(number, remote, tenant, may_take)
            if lease is not None:
                return lease
        return None

    def _try_slot(
        self, number: int, remote: str, tenant: str, may_take: bool
    ) -> SessionLease | None:
        """Lease slot `number` for `tenant` if it is free and, unless it is the tenant's, may be
        taken (see the module docstring)."""
        path = self._path(number)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        slot = Slot.read(fd)  # again, under the flock
        ours = slot.used and slot.tenant == tenant
        if not ours and not may_take:
            os.close(fd)
            return None
        idle = bool(self.idle_s) and time.time() - slot.last_used > self.idle_s
        if slot.used and not ours and not idle:  # evicted: end its session on the server
            old = url_with_session(remote, slot.session_id)
            threading.Thread(target=release_session, args=(old,), daemon=True).start()
        lease = SessionLease(path, fd, remote, tenant, slot.session_id)
        if not ours or idle:
            lease.rotate()
        return lease


def interrupt_session(url: str, timeout_s: float = CLIENT_TIMEOUT_S) -> bool:
    """Interrupt every operation the session in `url` runs; say whether that worked."""
    return run_client(INTERRUPT_SESSION, url, timeout_s)


def release_session(url: str, timeout_s: float = CLIENT_TIMEOUT_S) -> bool:
    """Release the session in `url` on the server; say whether that worked."""
    return run_client(RELEASE_SESSION, url, timeout_s)


def run_client(script: str, url: str, timeout_s: float) -> bool:
    """Run a short Spark Connect client script in a subprocess; say whether it succeeded."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SPARK_REMOTE_URL": url,  # not an argument: `ps` would show the token
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0
