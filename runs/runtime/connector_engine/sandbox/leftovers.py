"""Remove what fork servers of dead processes left in the temporary directory.

Every fork server has a private folder `connector-sandbox-<pid>-<random>` (its socket and its
log; connector_engine.sandbox.client), named after the app process that started it and removed
when it stops. A process killed with SIGKILL never removes it: the queue worker calls
`remove_sandbox_leftovers` when it starts and every few seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

FOLDER = re.compile(r"^connector-sandbox-(\d+)-")
CLOCK_SLACK_S = 2.0  # a folder is never older than its process; allow for clock granularity


def _process_started_at(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch), None when it does not exist; the current
    time when it exists but /proc cannot tell (so the folder is kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, under another user
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, IndexError, ValueError, StopIteration):
        return 0.0  # alive, start unknown: keep its folders
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def remove_sandbox_leftovers(directory: str | None = None) -> list[str]:
    """Remove the fork server folders in `directory` (default: the temporary directory) whose
    process is gone from this host; return their paths.

    A PID used again by a newer process counts as gone: the folder is older than the process.
    Folders of other users that cannot be removed are skipped.
    """
    root = Path(directory or tempfile.gettempdir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = FOLDER.match(entry.name)
        if match is None or int(match[1]) == os.getpid():
            continue
        try:
            if not entry.is_dir() or entry.is_symlink():
                continue
            created = entry.stat().st_mtime
        except OSError:
            continue
        started = _process_started_at(int(match[1]))
        if started is not None and started <= created + CLOCK_SLACK_S:
            continue  # its process is alive
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(str(entry))
    return removed
