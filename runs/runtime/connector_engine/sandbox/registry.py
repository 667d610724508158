"""Every warm sandbox of a process: the base environment's and one per package environment.

`SandboxRegistry.lease(environment)` returns the warm Sandbox whose worker has that environment's
site-packages on sys.path (the base environment's when `environment` is None), starting it on
first use, and marks it in use until the `with` block ends. A reaper thread stops package
environments' workers nobody has used for `idle_s` seconds and that no request is using; the
next request starts a new one. The base environment's worker stays warm.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from connector_engine.environments.store import ReadyEnvironment
from connector_engine.sandbox.client import Sandbox

DEFAULT_IDLE_S = 300.0
BASE = ("", 0)  # the registry key of the base environment (no packages)


class EnvironmentNotVisible(Exception):
    """Without bubblewrap, an environment inside a hidden path cannot be shown to user code."""


@dataclass
class _Entry:
    sandbox: Sandbox
    key: str  # the environment's key; "" for the base environment
    active: int = 0
    last_used: float = 0.0


class SandboxRegistry:
    """A thread-safe registry of warm sandboxes keyed by environment build."""

    def __init__(
        self,
        *,
        hidden_paths: Sequence[str] = (),
        readable_paths: Sequence[str] = (),
        use_bwrap: bool | None = None,
        idle_s: float = DEFAULT_IDLE_S,
    ) -> None:
        self.hidden_paths = tuple(os.path.abspath(path) for path in hidden_paths)
        self.readable_paths = tuple(readable_paths)
        self.use_bwrap = use_bwrap
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._reaper: threading.Thread | None = None

    @contextlib.contextmanager
    def lease(self, environment: ReadyEnvironment | None = None) -> Iterator[Sandbox]:
        """Yield the environment's warm sandbox (the base one for None) until the block ends."""
        entry = self._acquire(environment)
        try:
            yield entry.sandbox
        finally:
            with self._lock:
                entry.active -= 1
                entry.last_used = time.monotonic()

    def stop(self, key: str | None = None) -> int:
        """Stop the workers of environment `key` (every worker when None); return how many.

        A request running in one of them finishes; the next one starts a fresh worker.
        """
        with self._lock:
            chosen = [k for k, entry in self._entries.items() if key in (None, entry.key)]
            stopped = [self._entries.pop(k) for k in chosen]
        for entry in stopped:
            entry.sandbox.stop()
        return len(stopped)

    def reap(self, now: float | None = None) -> int:
        """Stop environments' workers idle for idle_s and not in use; return how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                k
                for k, entry in self._entries.items()
                if k != BASE and entry.active == 0 and now - entry.last_used >= self.idle_s
            ]
            stopped = [self._entries.pop(k) for k in idle]
        for entry in stopped:
            entry.sandbox.stop()
        return len(stopped)

    def running(self) -> list[str]:
        """Keys of the package environments with a warm worker in this process."""
        with self._lock:
            return sorted({entry.key for entry in self._entries.values() if entry.key})

    def _acquire(self, environment: ReadyEnvironment | None) -> _Entry:
        identity = BASE if environment is None else (environment.key, environment.generation)
        with self._lock:
            entry = self._entries.get(identity)
            if entry is None:
                entry = self._new_entry(environment)
                self._entries[identity] = entry
                # An older build of the same environment (rebuilt since) is retired when idle.
                for other_identity, other in self._entries.items():
                    if other.key == entry.key and other_identity != identity:
                        other.last_used = float("-inf")
            entry.active += 1
            entry.last_used = time.monotonic()
            if identity != BASE:
                self._start_reaper()
        return entry

    def _new_entry(self, environment: ReadyEnvironment | None) -> _Entry:
        """Create the sandbox of one environment (called with the lock held; starts nothing)."""
        if environment is None:
            sandbox = Sandbox(self.hidden_paths, self.use_bwrap, readable_paths=self.readable_paths)
            return _Entry(sandbox, "")
        sandbox = Sandbox(
            self.hidden_paths,
            self.use_bwrap,
            environment.python_paths,
            readable_paths=self.readable_paths,
        )
        if not sandbox.use_bwrap:
            _require_visible(environment, self.hidden_paths)
        return _Entry(sandbox, environment.key)

    def _start_reaper(self) -> None:
        """Start the reaper thread unless it runs (called with the lock held)."""
        if self._reaper is not None and self._reaper.is_alive():
            return
        self._reaper = threading.Thread(target=self._reap_loop, name="sandbox-reaper", daemon=True)
        self._reaper.start()

    def _reap_loop(self) -> None:
        while True:
            time.sleep(max(0.05, min(self.idle_s / 4, 30.0)))
            self.reap()
            with self._lock:
                if not any(key != BASE for key in self._entries):
                    self._reaper = None
                    return


def _require_visible(environment: ReadyEnvironment, hidden_paths: Sequence[str]) -> None:
    for path in environment.python_paths:
        for hidden in hidden_paths:
            if Path(path).is_relative_to(hidden):
                raise EnvironmentNotVisible(
                    f"The environment lies in {hidden}, which the sandbox hides (user code never "
                    "sees ENVIRONMENTS_DIR itself), and without bubblewrap it cannot be mounted "
                    "where user code sees it: install bubblewrap to use packages."
                )
