"""The operating-system side of the local Spark Connect server: ports and processes (Linux /proc).

The server's process tree is launcher (bwrap, or the script) -> ... -> JVM -> Python workers, all
in the launcher's process group. These helpers find, measure and stop such trees by host pid, and
never signal a pid unless a Spark Connect server still runs under it (pids are reused). The JVM
is made non-dumpable by running a binary it may not read (`execute_only_copy`, bound over java).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
STOP_GRACE_S = 5.0


def free_loopback_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def java_binary() -> str | None:
    """Return the real path of the java that Spark's scripts run (JAVA_HOME's, else PATH's)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(java) if java and os.path.isfile(java) else None


def execute_only_copy(binary: str, copy: Path) -> str:
    """Copy a binary to `copy` with mode 0111 and return its path. Without the capabilities to
    override file permissions (bubblewrap drops them), a process cannot read it, so the kernel
    makes a process that executes it non-dumpable: no other process of its uid reads its
    /proc/<pid>/environ or mem."""
    copy.unlink(missing_ok=True)
    shutil.copyfile(binary, copy)
    copy.chmod(0o111)
    return str(copy)


def port_accepts(port: int, timeout_s: float = 0.5) -> bool:
    """Say whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kill_group(pid: int, process: subprocess.Popen[bytes] | None) -> None:
    """Terminate a process group, then kill it if it is still there after a grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_S)
    else:
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_S)


def runs_server(pid: int) -> bool:
    """Say whether a live process is a Spark Connect server's launcher (or the server)."""
    return pid_alive(pid) and any(SERVER_CLASS in cmdline(p) for p in process_tree(pid))


def pid_alive(pid: int) -> bool:
    """Say whether a process exists and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def process_tree(pid: int) -> list[int]:
    """Return a process and all its descendants (Linux /proc)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        if current not in found:
            found.append(current)
            pending += children(current)
    return found


def children(pid: int) -> list[int]:
    """Return the process ids of a process's children (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            found += [int(child) for child in task.read_text().split()]
    return found


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def cmdline(pid: int) -> str:
    """Return a process's command line, arguments separated by spaces ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
