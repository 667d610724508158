"""bubblewrap command lines shared by the sandbox's fork server and the local Spark Connect server.

Both wrap a long-lived process the same way: the whole filesystem read-only, a fresh /dev and
/proc, a private /tmp, the hidden paths replaced by empty tmpfs (directories) or /dev/null
(files); the engine and the interpreter stay visible inside any of these covers (a checkout in
/tmp, an interpreter in a hidden home); then the binds a caller asks for, placed after the
hidden paths so they may lie inside one. Namespaces: PID, IPC, UTS
and cgroup (not for a JVM) are private; the network is shared. As root, bubblewrap runs without
a user namespace and every capability is dropped but the ones the caller keeps; otherwise a user
namespace is unshared. Without bwrap, callers run unwrapped and say "reduced isolation".
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from connector_engine import IMPORT_ROOT


def bwrap_choice(use_bwrap: bool | None, without: str) -> tuple[str | None, str]:
    """Return (bwrap's path or None when not used, the isolation label).

    `use_bwrap` None means "when installed"; `without` says what reduced isolation leaves open.
    """
    bwrap = shutil.which("bwrap")
    if bwrap and use_bwrap is not False:
        return bwrap, "bubblewrap"
    reason = "bubblewrap disabled (use_bwrap=False)"
    if not bwrap:
        reason = "bubblewrap (bwrap) is not installed"
    return None, f"reduced isolation: {reason}; {without}"


@functools.cache
def engine_paths() -> tuple[str, ...]:
    """What any process of the engine needs to see: the engine and the interpreter (its venv,
    its base installation, the directory of its binary). Fixed for a process's life."""
    paths = {
        IMPORT_ROOT,
        sys.prefix,
        sys.base_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
    }
    return tuple(sorted(str(Path(path).resolve()) for path in paths))


def closed_ancestors(paths: Iterable[str]) -> list[str]:
    """The outermost directories on the way to `paths` that others may not enter (a home of mode
    0700 holding the interpreter, say): covered, so that an unprivileged uid reaches the paths
    bound back inside them, and what else they hold stays hidden."""
    closed = set()
    for path in paths:
        for parent in reversed(Path(path).parents):
            try:
                mode = parent.stat().st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH:
                closed.add(str(parent))
                break
    return sorted(closed)


def reachable_by_others(paths: Iterable[str]) -> bool:
    """Whether a uid that owns nothing can enter every directory on the way to `paths`."""
    return not closed_ancestors(paths)


def kept_within(covered: Iterable[str], needed: Iterable[str]) -> list[str]:
    """Of the `needed` paths, the outermost ones that lie inside one of the `covered` ones: they
    must be bound back after the covers go on."""
    roots = [Path(path) for path in covered]
    inside = {path for path in needed if any(Path(path).is_relative_to(root) for root in roots)}
    # Bind parents before children, and skip children a bound parent already shows.
    ordered = sorted(inside, key=len)
    return [p for p in ordered if not any(p != q and Path(p).is_relative_to(q) for q in ordered)]


def bwrap_filesystem(
    hidden_paths: Sequence[str],
    *,
    readonly_binds: Iterable[tuple[str, str]] = (),
    writable_binds: Iterable[tuple[str, str]] = (),
    tmp_size_bytes: int | None = None,
) -> list[str]:
    """Return the mount arguments: read-only root, private /tmp, hidden paths, then binds.

    Binds are (source, target) pairs; sources are host paths that must exist. `tmp_size_bytes`
    caps the private /tmp (unbounded, like any tmpfs, at half the RAM otherwise).
    """
    argv = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if tmp_size_bytes is not None:
        argv += ["--size", str(tmp_size_bytes)]
    argv += ["--tmpfs", "/tmp"]
    covered = ["/tmp"]
    for path in closed_ancestors(engine_paths()):
        argv += ["--tmpfs", path]
        covered.append(path)
    for path in hidden_paths:
        if os.path.isdir(path):
            argv += ["--tmpfs", path]
            covered.append(path)
        elif os.path.exists(path):
            argv += ["--ro-bind", "/dev/null", path]
    for path in kept_within(covered, engine_paths()):
        # No cover may hide our own code or interpreter.
        argv += [*_enterable_parents(path, covered), "--ro-bind", path, path]
    for source, target in readonly_binds:
        argv += [*_enterable_parents(target, covered), "--ro-bind", source, target]
    for source, target in writable_binds:
        argv += [*_enterable_parents(target, covered), "--bind", source, target]
    return argv


def _enterable_parents(target: str, covered: Sequence[str]) -> list[str]:
    """Arguments making the directories on the way to a bind's target inside a cover enterable
    by anyone (an unprivileged uid must reach it; bubblewrap would make them 0700)."""
    root = next((Path(c) for c in covered if Path(target).is_relative_to(c)), None)
    if root is None:
        return []
    argv: list[str] = []
    for parent in reversed(Path(target).parents):
        if parent != root and parent.is_relative_to(root):
            argv += ["--perms", "0755", "--dir", str(parent)]
    return argv


def bwrap_namespaces(
    *, root_capabilities: Sequence[str] = (), unshare_cgroup: bool = True
) -> list[str]:
    """Return the namespace arguments; as root, keep only `root_capabilities`.

    A JVM must keep the cgroup namespace (`unshare_cgroup=False`): with a private one, the host's
    /sys/fs/cgroup no longer matches /proc/self/cgroup and its container detection crashes.
    """
    argv = ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if unshare_cgroup:
        argv += ["--unshare-cgroup-try"]
    if os.geteuid() == 0:
        argv += ["--cap-drop", "ALL"]
        for capability in root_capabilities:
            argv += ["--cap-add", capability]
    else:
        argv += ["--unshare-user"]
    return argv
