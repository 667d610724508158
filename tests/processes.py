"""Process helpers for tests that check what the sandbox started and killed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def processes_with_argument(marker: str) -> list[int]:
    """Return the pids whose command line has `marker` as an argument."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv:
            pids.append(int(entry.name))
    return pids


def wait_for(
    condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05
) -> bool:
    """Poll `condition` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
