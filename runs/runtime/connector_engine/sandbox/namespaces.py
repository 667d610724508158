"""The namespaces of one sandbox request, entered by its supervisor before user code runs.

As root, the supervisor first becomes nobody (when the interpreter is reachable by others in
this view), then enters a user and mount namespace mapped onto that uid, with a private /tmp, the
hidden paths covered (what user code needs inside them bound back) and, without network, a
network namespace of its own; then a second user namespace that locks those mounts, with a new
PID space.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import dataclass, field

from connector_engine.system import linux
from connector_engine.system.bubblewrap import (
    NOBODY_UID,
    engine_paths,
    kept_within,
    reachable_by_others,
)


@dataclass
class RequestNamespaces:
    """Which per-request namespaces the supervisor managed to enter."""

    pid_namespace: bool = False
    offline: bool = False  # in a network namespace of its own
    problems: list[str] = field(default_factory=list)


def enter_request_namespaces(
    hidden_paths: list[str], tmp_mb: int, *, network: bool = True
) -> RequestNamespaces:
    """Enter a user+mount namespace with a private /tmp that hides paths (and, without
    `network`, a network namespace of its own), then a locked one with a new PID space."""
    state = RequestNamespaces()
    if os.geteuid() == 0 and not interpreter_reachable_by_others():
        # Without bubblewrap's view, nobody could not reach the interpreter: stay root, and
        # keep RLIMIT_NPROC counting with a real uid of nobody.
        state.problems.append("user code keeps uid 0 on host files (the interpreter is private)")
        with contextlib.suppress(OSError):
            os.setresuid(NOBODY_UID, 0, 0)
    elif os.geteuid() == 0:
        # Never root on host files: the request becomes nobody (no capabilities, no groups), and
        # the user namespace below maps its root onto nobody. That also makes RLIMIT_NPROC count,
        # which the kernel never enforces for uid 0.
        try:
            os.setgroups([])
            os.setresgid(NOBODY_UID, NOBODY_UID, NOBODY_UID)
            os.setresuid(NOBODY_UID, NOBODY_UID, NOBODY_UID)
        except OSError as exc:
            state.problems.append(f"user code keeps uid 0 on host files ({exc.strerror})")
    uid, gid = os.geteuid(), os.getegid()
    try:
        offline = 0 if network else linux.CLONE_NEWNET
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS | offline)
        map_ids(uid, gid)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        state.offline = not network
    except OSError as exc:
        state.problems.append(f"per-request namespaces unavailable ({exc.strerror})")
        return state
    mount_private_tmp(tmp_mb, state)
    hide_paths(hidden_paths, state)
    try:
        # A second user namespace locks the mounts above: the connector cannot unmount them.
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS | linux.CLONE_NEWPID)
        map_ids(0, 0)
        state.pid_namespace = True
    except OSError as exc:
        state.problems.append(f"no private PID namespace ({exc.strerror})")
    return state


@functools.cache
def interpreter_reachable_by_others() -> bool:
    """Whether an unprivileged uid can reach the engine and the interpreter in this view (the
    fork server computes it once, before it forks supervisors)."""
    return reachable_by_others(engine_paths())


@functools.cache
def paths_user_code_needs() -> tuple[str, ...]:
    """The directories user code imports from: its import path (package environments) and the
    engine and interpreter. Computed once by the fork server; covers bind them back."""
    return tuple(p for p in {*sys.path, *engine_paths()} if p and os.path.isdir(p))


def map_ids(uid: int, gid: int) -> None:
    """Map the fresh user namespace's root onto `uid`/`gid` of the one around it.

    A process that is not dumpable cannot write its own uid_map (it belongs to root then), so
    the supervisor is dumpable just for that.
    """
    linux.prctl(linux.PR_SET_DUMPABLE, 1)
    try:
        linux.map_ids_to_self(uid, gid)
    finally:
        linux.prctl(linux.PR_SET_DUMPABLE, 0)


def mount_private_tmp(size_mb: int, state: RequestNamespaces) -> None:
    """Give the request its own /tmp (HOME and TMPDIR are in it): a fresh tmpfs of `size_mb`,
    gone when the request ends, so nothing one request leaves there reaches the next.

    What the connector needs from the fork server's /tmp (a package environment mounted there,
    or the interpreter or the engine when they live under /tmp) is bound back, read-only.
    """
    try:
        flags = linux.MS_NOSUID | linux.MS_NODEV
        cover("/tmp", "tmpfs", flags, f"size={size_mb}m,mode=1777")
    except OSError as exc:
        state.problems.append(f"no private /tmp ({exc.strerror})")


def hide_paths(hidden_paths: list[str], state: RequestNamespaces) -> None:
    """Cover hidden directories with an empty read-only tmpfs and hidden files with /dev/null;
    what the connector needs inside a hidden directory (the interpreter under a hidden home,
    say) is bound back, read-only."""
    for path in hidden_paths:
        try:
            if os.path.isdir(path):
                flags = linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
                cover(path, "tmpfs", flags, "size=64k,mode=0755")
            elif os.path.exists(path):
                linux.mount("/dev/null", path, None, linux.MS_BIND)
        except OSError as exc:
            state.problems.append(f"could not hide {path} ({exc.strerror})")


def cover(path: str, fstype: str, flags: int, data: str) -> None:
    """Mount a fresh `fstype` over `path`, then bind back, read-only, what the connector needs
    that lies inside it: its import path (package environments) and the engine and interpreter
    (connector_engine.system.bubblewrap.engine_paths)."""
    needed = paths_user_code_needs()
    kept = []
    try:
        for inside in kept_within([path], needed):
            if inside != path:
                kept.append((inside, os.open(inside, os.O_PATH | os.O_DIRECTORY)))
        # Writable first: the mount points of what is bound back are made in it.
        linux.mount(fstype, path, fstype, flags & ~linux.MS_RDONLY, data)
        read_only = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY
        for inside, fd in kept:
            os.makedirs(inside, exist_ok=True)
            linux.mount(f"/proc/self/fd/{fd}", inside, None, linux.MS_BIND | linux.MS_REC)
            with contextlib.suppress(OSError):  # the source is a read-only bind already
                linux.mount(None, inside, None, read_only | linux.MS_NOSUID | linux.MS_NODEV)
        if flags & linux.MS_RDONLY:
            linux.mount(None, path, None, linux.MS_REMOUNT | flags, data)
    finally:
        for _, fd in kept:
            os.close(fd)


def describe_isolation(isolation: str, namespaces: RequestNamespaces) -> str:
    """Return the isolation string, reduced when a per-request layer failed."""
    if not namespaces.problems:
        return isolation
    problems = "; ".join(namespaces.problems)
    if isolation.startswith("reduced isolation:"):
        return f"{isolation}; {problems}"
    return f"reduced isolation: {isolation}, but {problems}"
