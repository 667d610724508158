"""Running pip: install an environment's requirements and files into a fresh prefix.

Layering: pip installs with `--prefix` into the environment directory, with a constraints file
pinning every distribution of the app's interpreter (pandas, numpy, pyarrow, pyspark, Django,
...) to its installed version. Requirements the base already satisfies are not installed again,
and a requirement that conflicts with a base package fails the build instead of replacing it: its
error names what needs which version and the version the app has (see pip_errors.py).

pip (and any sdist's build code: user code) runs under bubblewrap when it is installed, wrapped
by the same builder as the sandbox (connector_engine.system.bubblewrap): the allow-list view
(the system, the interpreter, the engine; nothing else of the host), read-only, a private
size-capped /tmp that is also its HOME, only the build directory writable, private PID, IPC, UTS
and cgroup namespaces. As root, the build becomes nobody (no groups, no capabilities) in a user
namespace of its own, owning the build directory only while it builds. Its environment is an
allow-list: nothing of the server's (no HOME, so no user pip configuration or .netrc; no PIP_*
variables): pip options come from ENVIRONMENT_PIP_ARGS only. Resource limits (address space,
file size, processes, CPU time, no core files) apply through util-linux's prlimit.

pip's output is streamed while it runs, and the build (its whole process group, with bubblewrap's
PID namespace) is killed at the first bound it passes: the overall timeout, backtracking (pip
trying version after version of a requirement) for longer than `resolve_timeout_s`, or a build
directory larger than `max_size_mb`. A spec without network access is built with a network
namespace of its own (nothing but loopback), which needs bubblewrap: without it the build fails.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from connector_engine.environments.spec import EnvironmentSpec, base_constraints
from connector_engine.output import cut_marker
from connector_engine.system.bubblewrap import (
    NOBODY_UID,
    become_nobody,
    bwrap_choice,
    bwrap_filesystem,
    bwrap_namespaces,
    chown_tree,
)

MAX_LOG_BYTES = 200_000  # the end of pip's output kept as the build log
SCRATCH = ("files", "constraints.txt")  # written into the prefix for pip, removed after
MB = 1024 * 1024
SIZE_CHECK_S = 2.0  # how often the build directory's size is measured while pip runs
EXIT_GRACE_S = 5.0  # how long output may still come after pip exited (then its group is killed)
MAX_LINE = 4096  # of a line scanned for pip's backtracking messages
# pip's resolver says this when it starts (and keeps) trying versions of one requirement.
BACKTRACKING = re.compile(
    rb"pip is (?:still )?looking at multiple versions of ([A-Za-z0-9][A-Za-z0-9._-]*)"
)
# A distribution file named in pip's output: name and version of what it is looking at.
DISTRIBUTION = re.compile(
    rb"([A-Za-z0-9][A-Za-z0-9._-]*?)-(\d[A-Za-z0-9.!+]*?)(?:-[^/\s]*)?\.(?:whl|tar\.gz|zip)\b"
)


@dataclass(frozen=True)
class BuildLimits:
    """What one environment build may use."""

    tmp_mb: int = 2048  # its private /tmp (and HOME), a tmpfs
    memory_mb: int = 4096  # RLIMIT_AS of pip and the build code
    max_file_mb: int = 1024  # RLIMIT_FSIZE
    resolve_timeout_s: float = 120.0  # pip backtracking for longer is stopped
    max_size_mb: int = 4096  # the build directory (the environment being built)
    max_processes: int = 1024  # RLIMIT_NPROC (counted per uid: nobody's, when the app is root)


@dataclass(frozen=True)
class PipRun:
    """What one pip run left: whether it succeeded and its output (the build log)."""

    ok: bool
    log: str


class PipInstaller:
    """Runs `pip install --prefix` for a spec, under bubblewrap when available."""

    def __init__(
        self,
        *,
        pip_args: Sequence[str] = (),
        timeout_s: float = 900.0,
        hidden_paths: Sequence[str] = (),
        use_bwrap: bool | None = None,
        limits: BuildLimits | None = None,
    ) -> None:
        self.pip_args = list(pip_args)
        self.timeout_s = timeout_s
        self.limits = limits or BuildLimits()
        self.hidden_paths = [os.path.abspath(path) for path in hidden_paths]
        self._bwrap, self.isolation = bwrap_choice(
            use_bwrap, "pip and the build code of sdists run without a sandbox"
        )

    def install(self, spec: EnvironmentSpec, prefix: Path) -> PipRun:
        """Install `spec` into the empty directory `prefix`; its scratch files are removed."""
        if not spec.network and not self._bwrap:
            return PipRun(
                False,
                "ERROR: this environment must be built without network access, which needs "
                f"bubblewrap (bwrap) for a network namespace of its own; {self.isolation}. "
                "Install bubblewrap, or turn network access on for the connection.\n",
            )
        try:
            argv = self._pip_argv(spec, prefix)
            return self._run(argv, prefix, network=spec.network)
        finally:
            for name in SCRATCH:
                scratch = prefix / name
                if scratch.is_dir():
                    shutil.rmtree(scratch)
                else:
                    scratch.unlink(missing_ok=True)

    def _pip_argv(self, spec: EnvironmentSpec, prefix: Path) -> list[str]:
        constraints = prefix / "constraints.txt"
        constraints.write_text(base_constraints())
        argv = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--prefix",
            str(prefix),
            "--constraint",
            str(constraints),
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-input",
            "--no-warn-script-location",
            "--progress-bar",
            "off",
            *self.pip_args,
        ]
        if not spec.network:
            argv += ["--retries", "0"]  # nothing to retry without a network
        if spec.files:
            files = prefix / "files"
            files.mkdir()
            for ref in spec.files:
                shutil.copyfile(ref.path, files / ref.name)
            # Requirement lines may name an uploaded file's project: pip finds it here.
            argv += ["--find-links", str(files), *(str(files / ref.name) for ref in spec.files)]
        return [*argv, *spec.requirements]

    def _run(self, argv: list[str], prefix: Path, *, network: bool = True) -> PipRun:
        """Run pip (under bubblewrap when available) with `prefix` as its working directory.

        As root under bubblewrap the build runs as nobody, owning only its build directory for
        the build's length; the environment is root's again when it is done.
        """
        header = f"$ {' '.join(argv[2:])}\n"
        as_nobody = (
            bool(self._bwrap) and os.geteuid() == 0 and bool(become_nobody(user_namespace=True))
        )
        if self._bwrap and os.geteuid() == 0 and not as_nobody:
            header += "(reduced isolation: util-linux's setpriv or unshare is missing; the build "
            header += "runs as root without capabilities)\n"
        if self._bwrap:
            argv = [*self._bwrap_prefix(prefix, network=network), *argv]
        else:
            header += f"({self.isolation})\n"
        if as_nobody:
            chown_tree(prefix, NOBODY_UID, NOBODY_UID)
        try:
            return self._run_watched(argv, prefix, header, network=network)
        finally:
            if as_nobody:
                chown_tree(prefix, 0, 0)

    def _run_watched(self, argv: list[str], prefix: Path, header: str, *, network: bool) -> PipRun:
        """Start pip, stream its output and stop it at the first bound it passes."""
        if not network:
            header += "(no network access)\n"
        argv = [*self._prlimit_prefix(), *argv]
        try:
            process = subprocess.Popen(
                argv,
                env=pip_environment("/tmp" if self._bwrap else str(prefix)),
                cwd=str(prefix),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return PipRun(False, f"{header}ERROR: could not start pip: {exc}\n")
        output = PipOutput(MAX_LOG_BYTES)
        try:
            stopped = self._watch(process, prefix, output)
        finally:
            if process.poll() is None:  # an error of ours: leave nothing running
                _kill_group(process)
            assert process.stdout is not None
            process.stdout.close()
            process.wait()
        return PipRun(process.returncode == 0 and not stopped, output.log(header, stopped))

    def _watch(self, process: subprocess.Popen, prefix: Path, output: PipOutput) -> str:
        """Stream pip's output into `output` until it is done, stopping it at the first bound it
        passes; return why it was stopped (an ERROR line) or "" when it ran its course."""
        assert process.stdout is not None
        pipe = process.stdout.fileno()
        started = time.monotonic()
        deadline = started + self.timeout_s
        next_size_check = started + SIZE_CHECK_S
        exited_at: float | None = None
        stopped = ""
        with selectors.DefaultSelector() as selector:
            selector.register(pipe, selectors.EVENT_READ)
            reading = True
            while True:
                now = time.monotonic()
                if exited_at is None and process.poll() is not None:
                    exited_at = now
                if exited_at is not None and (not reading or now - exited_at > EXIT_GRACE_S):
                    break  # done (after a grace for output still held by what pip left)
                stopped = self._bound_passed(now, deadline, output)
                if not stopped and now >= next_size_check:
                    stopped = self._size_passed(prefix)
                    measured = time.monotonic()
                    # A large tree is measured less often: at most a tenth of the time.
                    next_size_check = measured + max(SIZE_CHECK_S, 10 * (measured - now))
                if stopped:
                    break
                wait = min(deadline, next_size_check, output.resolve_deadline(self.limits)) - now
                wait = min(max(wait, 0.01), 0.5)
                if not reading:
                    time.sleep(wait)
                    continue
                if selector.select(wait):
                    chunk = os.read(pipe, 65536)
                    if chunk:
                        output.add(chunk, time.monotonic())
                    else:
                        reading = False
        if stopped or reading:
            _kill_group(process)  # the whole build, or what pip left holding the pipe
        if reading:
            _drain(pipe, output)
        return stopped or self._size_passed(prefix)  # what it left counts too

    def _size_passed(self, prefix: Path) -> str:
        """The ERROR line when the build directory is larger than its bound, or ""."""
        size = disk_usage(prefix)
        if size <= self.limits.max_size_mb * MB:
            return ""
        return (
            f"ERROR: the build directory grew to {size / MB:.1f} MB, more than its limit of "
            f"{self.limits.max_size_mb} MB; the build was stopped."
        )

    def _bound_passed(self, now: float, deadline: float, output: PipOutput) -> str:
        """The ERROR line of the time bound `now` passed (overall or backtracking), or ""."""
        if now >= deadline:
            return f"ERROR: the build took longer than {self.timeout_s:g} s and was stopped."
        if now < output.resolve_deadline(self.limits):
            return ""
        name = output.backtracking
        version = output.versions.get(canonical_name(name), "")
        example = f"{name}=={version.split('.')[0]}.x" if version else f"{name}==<version>"
        return (
            f"ERROR: pip spent more than {self.limits.resolve_timeout_s:g} s trying versions of "
            f"{name} to resolve the requirements; pin it (e.g. {example}) in the packages."
        )

    def _bwrap_prefix(self, prefix: Path, *, network: bool = True) -> list[str]:
        """bubblewrap for pip: the allow-list view with only `prefix` writable; without
        `network`, a network namespace of its own (only a loopback nobody else is on).

        As root, bubblewrap keeps only what it takes to become nobody: setpriv then drops to
        nobody (no groups, no capabilities, none inheritable or in the bounding set) and
        unshare enters a user namespace mapped onto nobody before pip starts.
        """
        assert self._bwrap is not None
        # The prefix is bound after the hidden paths: it may lie inside one of them.
        writable = [(str(prefix), str(prefix))]
        tmp_bytes = self.limits.tmp_mb * MB
        filesystem = bwrap_filesystem(
            self.hidden_paths, writable_binds=writable, tmp_size_bytes=tmp_bytes
        )
        as_root = os.geteuid() == 0
        keep = ("CAP_SETUID", "CAP_SETGID") if as_root else ()
        argv = [self._bwrap, *filesystem, *bwrap_namespaces(root_capabilities=keep)]
        if not network:
            argv.append("--unshare-net")
        argv += ["--die-with-parent", "--new-session", "--chdir", str(prefix), "--"]
        if as_root:
            argv += become_nobody(user_namespace=True)
        return argv

    def _prlimit_prefix(self) -> list[str]:
        """util-linux's prlimit with the build's limits (nothing when it is missing)."""
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            return []
        return [
            prlimit,
            f"--as={self.limits.memory_mb * MB}",
            f"--fsize={self.limits.max_file_mb * MB}",
            f"--nproc={self.limits.max_processes}",
            f"--cpu={int(self.timeout_s) + 1}",
            "--core=0",
            "--",
        ]


class PipOutput:
    """pip's output as it streams: its end kept for the build log, its backtracking noticed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0  # bytes cut from the start of `data`
        self._line = b""  # the unfinished last line (its start)
        self.backtracking = ""  # the requirement pip last said it tries versions of
        self.backtracking_since: float | None = None
        self.versions: dict[str, str] = {}  # canonical name -> last version of a file pip named

    def add(self, chunk: bytes, now: float) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.limit:
            cut = len(self.data) - self.limit
            del self.data[:cut]
            self.dropped += cut
        lines = (self._line + chunk).split(b"\n")
        self._line = lines.pop()[:MAX_LINE]
        for line in lines:
            self._scan(line[:MAX_LINE], now)

    def _scan(self, line: bytes, now: float) -> None:
        match = BACKTRACKING.search(line)
        if match:
            self.backtracking = match.group(1).decode()
            if self.backtracking_since is None:
                self.backtracking_since = now
            return
        for name, version in DISTRIBUTION.findall(line):
            if len(self.versions) < 10_000:
                self.versions[canonical_name(name.decode())] = version.decode()

    def resolve_deadline(self, limits: BuildLimits) -> float:
        """When backtracking passes its bound (infinity while pip does not backtrack)."""
        if self.backtracking_since is None:
            return float("inf")
        return self.backtracking_since + limits.resolve_timeout_s

    def log(self, header: str, stopped: str = "") -> str:
        """The build log: the header, pip's output and why it was stopped, its end kept."""
        text = header + self.data.decode(errors="replace")
        if stopped:
            text += f"\n{stopped}\n"
        data = text.encode("utf-8", errors="replace")
        cut = self.dropped + max(len(data) - self.limit, 0)
        if not cut:
            return text
        return cut_marker(cut) + "\n" + data[-self.limit :].decode("utf-8", errors="ignore")


def canonical_name(name: str) -> str:
    """A project name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _drain(pipe: int, output: PipOutput, timeout_s: float = 5.0) -> None:
    """Read what is left in the pipe of a killed build (for at most `timeout_s`)."""
    end = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while (left := end - time.monotonic()) > 0 and selector.select(left):
            chunk = os.read(pipe, 65536)
            if not chunk:
                return
            output.add(chunk, time.monotonic())


def pip_environment(home: str) -> dict[str, str]:
    """pip's whole environment: an allow-list, nothing of the server's own (no HOME, no PIP_*)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",  # pip's output streams as it comes (its backtracking is seen)
    }


def site_directories(prefix: Path) -> list[str]:
    """The site-packages directories pip created under `prefix`, relative to it (at least one).

    When the base satisfied every requirement pip creates none; an empty one is made so the
    environment always has a directory to mount.
    """
    found = sorted(
        str(path.relative_to(prefix))
        for pattern in ("lib/python*/site-packages", "lib64/python*/site-packages")
        for path in prefix.glob(pattern)
        if path.is_dir()
    )
    if not found:
        default = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
        (prefix / default).mkdir(parents=True)
        found = [default]
    return found


def installed_packages(directories: Iterable[Path]) -> list[list[str]]:
    """[name, version] of each distribution installed in `directories`, sorted by name."""
    found = {}
    for dist in importlib.metadata.distributions(path=[str(d) for d in directories]):
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = [name, dist.version]
    return [found[name] for name in sorted(found)]


def disk_usage(path: Path) -> int:
    """The bytes the tree under `path` takes on disk (like du: allocated blocks, directories
    included, hard links once, symbolic links not followed)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    pending = [str(path)]
    while pending:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if info.st_nlink > 1 and not entry.is_dir(follow_symlinks=False):
                        if (info.st_dev, info.st_ino) in seen:
                            continue
                        seen.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
    return total


def tree_size(path: Path) -> int:
    """The bytes of every file under `path`."""
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total
