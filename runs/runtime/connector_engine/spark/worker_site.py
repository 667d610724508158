"""The first thing every Python process of the local Spark server does: it is their sitecustomize.

The server's Python daemons and workers (UDFs, mapInPandas, Python data sources and their
planning) run every tenant's code as one uid in one PID namespace. `LocalSparkServer` copies this
file to DIRECTORY/conf/python/sitecustomize.py and puts that directory on the server's PYTHONPATH,
so `site` runs it when any of them starts: before pyspark, before user code, and before the
working directory (a session's artifacts) joins sys.path, so a session cannot shadow it. Imported
under its own name (the runtime zip, tests), it does nothing. Standard library only.

Decisions:
- A sitecustomize, not `spark.python.daemon.module`: Spark starts the daemons that plan Python
  data sources with pyspark.daemon whatever that setting says, and pyspark.daemon runs only
  worker modules named pyspark.*.
- Not dumpable (prctl PR_SET_DUMPABLE 0; the workers a daemon forks inherit it): a process
  without CAP_SYS_PTRACE cannot read its /proc/<pid>/environ, mem, cwd, fd or maps, whatever
  its uid. Works on any Linux.
- Landlock, when the kernel offers it (5.13+): the process gets a domain of its own, kept by its
  forks and across exec. From one domain nothing can ptrace (or read those /proc files of) a
  process outside it: not another session's workers, not the JVM, even after user code makes its
  own process dumpable again. Files may be written only in the process's own scratch directory
  (a new one under SCRATCH_ROOT, also its TMPDIR, so `tempfile` uses it; a daemon's workers
  share it) and /dev: the sessions' working directories (DIRECTORY/tmp, which hold their
  artifacts and are on their import path), other processes' scratch directories, the warehouse
  and the staging directory stay read-only to Python, wherever they are (even under /tmp); the
  JVM writes what it must. From Landlock ABI 6, signals reach only processes of the same domain
  (no killing another session's workers). Without Landlock, all of these stay writable.
- Best effort: a step the kernel refuses is skipped, so the worker still runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_SCOPE_SIGNAL = 1 << 1  # ABI 6
# What creates, changes or removes a file, by the Landlock ABI that introduced it.
WRITE_ACCESS_ABI_1 = (
    (1 << 1)  # WRITE_FILE
    | (1 << 4)  # REMOVE_DIR
    | (1 << 5)  # REMOVE_FILE
    | (1 << 6)  # MAKE_CHAR
    | (1 << 7)  # MAKE_DIR
    | (1 << 8)  # MAKE_REG
    | (1 << 9)  # MAKE_SOCK
    | (1 << 10)  # MAKE_FIFO
    | (1 << 11)  # MAKE_BLOCK
    | (1 << 12)  # MAKE_SYM
)
REFER = 1 << 13  # ABI 2: link or rename across directories
TRUNCATE = 1 << 14  # ABI 3
SCRATCH_ROOT = "/tmp/spark-python"  # each process's scratch directory is made here


class RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (old kernel, disabled, filtered)."""
    version = _libc().syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(version, 0)


def make_not_dumpable() -> bool:
    """Make this process (and what it forks) unreadable through /proc by other processes."""
    return _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def restrict_with_landlock(writable: list[str]) -> bool:
    """Enter a Landlock domain of our own: writes only under `writable`, no ptrace (and, from
    ABI 6, no signals) outside the domain. Return whether it is in force."""
    abi = landlock_abi()
    if abi < 1:
        return False
    libc = _libc()
    handled = WRITE_ACCESS_ABI_1 | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    attr = RulesetAttr(handled, 0, LANDLOCK_SCOPE_SIGNAL if abi >= 6 else 0)
    ruleset = libc.syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
        ctypes.c_uint32(0),
    )
    if ruleset < 0:
        return False
    try:
        for path in writable:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # writable nowhere there, then
            try:
                rule = PathBeneathAttr(handled, fd)
                libc.syscall(
                    ctypes.c_long(SYS_LANDLOCK_ADD_RULE),
                    ctypes.c_int(ruleset),
                    ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                    ctypes.byref(rule),
                    ctypes.c_uint32(0),
                )
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        restricted = libc.syscall(
            ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)
        )
        return restricted == 0
    finally:
        os.close(ruleset)


def make_scratch() -> str:
    """Create a scratch directory of this process's own and make it its (and its children's)
    temporary directory; return its path."""
    os.makedirs(SCRATCH_ROOT, mode=0o755, exist_ok=True)
    scratch = os.path.join(SCRATCH_ROOT, os.urandom(8).hex())
    os.mkdir(scratch, 0o700)
    os.environ["TMPDIR"] = scratch
    return scratch


def guard() -> None:
    """Everything above, each step on its own: one the kernel refuses does not stop the next."""
    with contextlib.suppress(OSError):
        make_not_dumpable()
    writable = ["/dev"]
    with contextlib.suppress(OSError):
        writable.append(make_scratch())
    with contextlib.suppress(OSError):
        restrict_with_landlock(writable)


if __name__ == "sitecustomize":
    guard()
