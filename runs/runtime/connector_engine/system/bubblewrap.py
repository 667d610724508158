"""bubblewrap command lines shared by the sandbox's fork server, package builds and the local
Spark Connect server.

Each wraps a process in an allow-list view: only the system's programs, libraries, certificates
and name-resolution files, the engine and the interpreter, and the folders the operator lets
connector code read, all read-only; a fresh /dev and /proc and a private /tmp; then the binds a
caller asks for. Nothing else of the host exists there (no home, no data directory, no project
source, no /etc/shadow or pip.conf). A hidden path that lies inside what the view shows is still
covered, the engine bound back inside it. Binds name resolved paths; the symbolic links on the
way to the interpreter (a `.venv` that links to another folder) are made again in the view.
Namespaces: PID, IPC, UTS and cgroup (not for a JVM) are private; the network is shared. As
root, bubblewrap runs without a user namespace and every capability is dropped but the ones the
caller keeps; otherwise a user namespace is unshared.
Without bwrap, callers run unwrapped and say "reduced isolation".
"""

from __future__ import annotations

import functools
import glob
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


@functools.cache
def engine_links() -> tuple[tuple[str, str], ...]:
    """The symbolic links on the way to the interpreter as this process names it (a `.venv` that
    links to another folder, say), as (target, link) pairs: `engine_paths` binds only resolved
    paths, so a view must make these again for `sys.executable` to start in it."""
    names = (sys.executable, sys.prefix, sys.base_prefix)
    links = [link for path in names for link in symlinks_to(path)]
    return tuple(dict.fromkeys(links))


def symlinks_to(path: str) -> list[tuple[str, str]]:
    """The symbolic links followed, in order, when `path` is resolved, as (target as written,
    link) pairs, the link named by its resolved parent."""
    links: list[tuple[str, str]] = []
    current, parts = "/", list(Path(os.path.abspath(path)).parts[1:])
    while parts and len(links) < 40:  # 40: the kernel's own bound on links followed
        name = parts.pop(0)
        if name in {"", "."}:
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        if not os.path.islink(candidate):
            current = candidate
            continue
        target = os.readlink(candidate)
        links.append((target, candidate))
        if os.path.isabs(target):
            current = "/"
        parts = [part for part in Path(target).parts if part != "/"] + parts
    return links


def closed_ancestors(paths: Iterable[str]) -> list[str]:
    """The outermost directories on the way to `paths` that others may not enter (a home of mode
    0700 holding the interpreter, say): an unprivileged uid cannot reach the paths without a
    view that makes them enterable."""
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
    readable_paths: Iterable[str] = (),
    tmp_size_bytes: int | None = None,
) -> list[str]:
    """Return the mount arguments of an allow-list view: the system, the engine, then binds.

    The view holds only the system's programs, libraries and certificates (`system_view`), the
    engine and the interpreter (`engine_paths`), the operator's `readable_paths` (folders of
    source files connector code may read), a fresh /dev and /proc and a private /tmp
    (`tmp_size_bytes` caps it; a tmpfs holds up to half the RAM otherwise), all read-only; then
    the caller's binds, (source, target) pairs of host paths that must exist. A hidden path that
    lies inside what the view shows is covered (an empty tmpfs for a directory, /dev/null for a
    file); what the engine needs inside it is bound back.
    """
    argv = ["--dev", "/dev", "--proc", "/proc"]
    system = system_paths()
    made = {"/", "/tmp", "/dev", "/proc", *system}
    for path in system:
        if os.path.islink(path) and path in SYSTEM_ROOTS:
            argv += ["--symlink", os.readlink(path), path]  # merged /usr: /bin -> usr/bin
        else:
            argv += [*_directories_to(path, made), "--ro-bind", path, path]
    if tmp_size_bytes is not None:
        argv += ["--size", str(tmp_size_bytes)]
    argv += ["--perms", "1777", "--tmpfs", "/tmp"]
    shown = [
        path
        for path in [*engine_paths(), *sorted(_resolved(readable_paths))]
        if path != "/" and not any(Path(path).is_relative_to(root) for root in system)
    ]
    for path in kept_within(["/"], shown):
        argv += [*_directories_to(path, made), "--ro-bind", path, path]
    covered = []
    for path in hidden_paths:
        if not any(Path(path).is_relative_to(root) for root in [*system, *shown]):
            continue  # not in the view at all
        if os.path.isdir(path):
            argv += ["--tmpfs", path]
            covered.append(path)
        elif os.path.exists(path):
            argv += ["--ro-bind", "/dev/null", path]
    kept = kept_within(covered, engine_paths())
    for path in kept:
        # No cover may hide our own code or interpreter.
        argv += [*_directories_to(path, made), "--ro-bind", path, path]
    for target, link in engine_links():
        # The interpreter reached through a link: make the link again where the view lacks it.
        parent = Path(os.path.dirname(link))
        shows = any(parent.is_relative_to(root) for root in [*system, *shown])
        hides = any(parent.is_relative_to(path) for path in covered) and not any(
            parent.is_relative_to(path) for path in kept
        )
        if shows and not hides:
            continue
        argv += [*_directories_to(link, made), "--symlink", target, link]
        made.add(link)
    for source, target in readonly_binds:
        argv += [*_directories_to(target, made), "--ro-bind", source, target]
    for source, target in writable_binds:
        argv += [*_directories_to(target, made), "--bind", source, target]
    # The view's own root (a tmpfs holding the directories made above) is read-only too.
    return [*argv, "--remount-ro", "/"]


# The system directories and /etc entries the view shows: programs, libraries, Java, name
# resolution, certificates, time zones and the user database (a JVM needs its own user's name).
# Nothing else of /etc (no shadow, pip.conf, gitconfig or an operator's secrets).
SYSTEM_ROOTS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_ETC = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "crypto-policies",
    "debian_version",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "java-*",
    "krb5.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "odbc.ini",
    "odbcinst.ini",
    "os-release",
    "passwd",
    "pki",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
)


@functools.cache
def system_paths() -> tuple[str, ...]:
    """The system paths the view shows: /usr and its kin, and the allowed entries of /etc."""
    paths = [path for path in SYSTEM_ROOTS if os.path.isdir(path)]
    for pattern in SYSTEM_ETC:
        paths += sorted(glob.glob(os.path.join("/etc", pattern)))
    return tuple(paths)


def _resolved(paths: Iterable[str]) -> set[str]:
    """Existing `paths`, resolved (a bind must name where a path really is)."""
    return {str(Path(path).resolve()) for path in paths if os.path.exists(path)}


def _directories_to(target: str, made: set[str]) -> list[str]:
    """Arguments creating the directories on the way to a bind's target, enterable by anyone (an
    unprivileged uid must reach it; bubblewrap would make some 0700), each once."""
    argv: list[str] = []
    for parent in reversed(Path(target).parents):
        if str(parent) not in made:
            argv += ["--perms", "0755", "--dir", str(parent)]
            made.add(str(parent))
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


NOBODY_UID = 65534


@functools.cache
def become_nobody(*, user_namespace: bool = False) -> tuple[str, ...]:
    """util-linux commands that run what follows as nobody (no groups, no capabilities, none
    inheritable or in the bounding set) and, with `user_namespace`, in a user namespace of its
    own mapped onto nobody; nothing when they are missing. For a root app under bubblewrap,
    which must keep CAP_SETUID and CAP_SETGID for it (see `bwrap_namespaces`)."""
    setpriv, unshare = shutil.which("setpriv"), shutil.which("unshare")
    if not setpriv or (user_namespace and not unshare):
        return ()
    argv = [
        setpriv,
        f"--reuid={NOBODY_UID}",
        f"--regid={NOBODY_UID}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ]
    if user_namespace:
        argv += [unshare, "--user", f"--map-user={NOBODY_UID}", f"--map-group={NOBODY_UID}", "--"]
    return tuple(argv)


def chown_tree(root: str | os.PathLike[str], uid: int, gid: int) -> None:
    """Give `root` and everything in it (symbolic links themselves) to uid:gid."""
    os.chown(root, uid, gid)
    for directory, names, files in os.walk(root):
        for name in [*names, *files]:
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def share_with_nobody(
    owned: Iterable[str | os.PathLike[str]], *, entered: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """For a process that becomes nobody under bubblewrap: give it the `owned` directories and
    what they hold directly (group root, 0770 at the top, so that bubblewrap, root without
    capabilities, still enters them; not whole trees, which grow with what the process leaves),
    and let it enter, not list, the `entered` directories."""
    for path in owned:
        os.chown(path, NOBODY_UID, 0)
        os.chmod(path, 0o770)
        for entry in os.scandir(path):
            os.chown(entry.path, NOBODY_UID, 0, follow_symlinks=False)
    for path in entered:
        os.chmod(path, os.stat(path).st_mode | stat.S_IXOTH)
