"""Running pip: install an environment's requirements and files into a fresh prefix.

Layering: pip installs with `--prefix` into the environment directory, with a constraints file
pinning every distribution of the app's interpreter (pandas, numpy, pyarrow, pyspark, Django,
...) to its installed version. Requirements the base already satisfies are not installed again,
and a requirement that conflicts with a base package fails the build instead of replacing it.

pip (and any sdist's build code: user code) runs under bubblewrap when it is installed, wrapped
by the same builder as the sandbox (connector_engine.system.bubblewrap): a read-only root, a
private size-capped /tmp that is also its HOME, the hidden paths covered, only the build
directory writable, private PID, IPC, UTS and cgroup namespaces and, as root, every capability
dropped. Its environment is an allow-list: nothing of the server's (no HOME, so no user pip
configuration or .netrc; no PIP_* variables): pip options come from ENVIRONMENT_PIP_ARGS only.
Resource limits (address space, file size, no core files) apply through util-linux's prlimit.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from connector_engine.environments.spec import EnvironmentSpec, base_constraints
from connector_engine.output import cap_text
from connector_engine.system.bubblewrap import bwrap_choice, bwrap_filesystem, bwrap_namespaces

MAX_LOG_BYTES = 200_000  # the end of pip's output kept as the build log
SCRATCH = ("files", "constraints.txt")  # written into the prefix for pip, removed after


@dataclass(frozen=True)
class BuildLimits:
    """What one environment build may use."""

    tmp_mb: int = 2048  # its private /tmp (and HOME), a tmpfs
    memory_mb: int = 4096  # RLIMIT_AS of pip and the build code
    max_file_mb: int = 1024  # RLIMIT_FSIZE


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
        try:
            argv = self._pip_argv(spec, prefix)
            return self._run(argv, prefix)
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
        if spec.files:
            files = prefix / "files"
            files.mkdir()
            for ref in spec.files:
                shutil.copyfile(ref.path, files / ref.name)
            # Requirement lines may name an uploaded file's project: pip finds it here.
            argv += ["--find-links", str(files), *(str(files / ref.name) for ref in spec.files)]
        return [*argv, *spec.requirements]

    def _run(self, argv: list[str], prefix: Path) -> PipRun:
        """Run pip (under bubblewrap when available) with `prefix` as its working directory."""
        header = f"$ {' '.join(argv[2:])}\n"
        if self._bwrap:
            argv = [*self._bwrap_prefix(prefix), *argv]
        else:
            header += f"({self.isolation})\n"
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
        try:
            output, _ = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            text = output.decode(errors="replace")
            stopped = f"ERROR: the build took longer than {self.timeout_s:g} s and was stopped.\n"
            return PipRun(False, cap_text(f"{header}{text}\n{stopped}", MAX_LOG_BYTES, "tail"))
        log = cap_text(header + output.decode(errors="replace"), MAX_LOG_BYTES, "tail")
        return PipRun(process.returncode == 0, log)

    def _bwrap_prefix(self, prefix: Path) -> list[str]:
        """bubblewrap for pip: the shared filesystem view with only `prefix` writable."""
        assert self._bwrap is not None
        # The prefix is bound after the hidden paths: it may lie inside one of them.
        writable = [(str(prefix), str(prefix))]
        tmp_bytes = self.limits.tmp_mb * 1024 * 1024
        filesystem = bwrap_filesystem(
            self.hidden_paths, writable_binds=writable, tmp_size_bytes=tmp_bytes
        )
        argv = [self._bwrap, *filesystem, *bwrap_namespaces()]
        return [*argv, "--die-with-parent", "--new-session", "--chdir", str(prefix), "--"]

    def _prlimit_prefix(self) -> list[str]:
        """util-linux's prlimit with the build's limits (nothing when it is missing)."""
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            return []
        mb = 1024 * 1024
        return [
            prlimit,
            f"--as={self.limits.memory_mb * mb}",
            f"--fsize={self.limits.max_file_mb * mb}",
            "--core=0",
            "--",
        ]


def pip_environment(home: str) -> dict[str, str]:
    """pip's whole environment: an allow-list, nothing of the server's own (no HOME, no PIP_*)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def pip_error(log: str) -> str:
    """pip's own error lines from a build log (or its last lines when there are none)."""
    lines = log.strip().splitlines()
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors or lines[-5:]
    return "\n".join(chosen)[-4000:]


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


def tree_size(path: Path) -> int:
    """The bytes of every file under `path`."""
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total
