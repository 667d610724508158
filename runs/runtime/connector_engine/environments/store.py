"""Package environments: one pip-built directory per requirement set, built once and reused.

Django-free. An environment is identified by `environment_key(spec)`: a hash of the interpreter
(implementation, Python version and the app's installed base packages), the sorted, normalised
requirement lines and the uploaded package files (name and SHA-256). `EnvironmentStore` keeps
them under one root directory:

    <root>/<key>/                 a ready environment: pip's --prefix, manifest.json, build.log
    <root>/<key>.lock             flock'ed by whoever builds <key>: concurrent builders build once
    <root>/<key>.failed.json      the last failed build (its log); sticky until a forced rebuild
    <root>/<key>.building-<rnd>/  a build in progress; renamed to <key> only when pip succeeded
    <root>/<key>.retired-<rnd>/   a replaced environment, removed right after the swap

Layering: pip installs with `--prefix` into the environment directory, with a constraints file
pinning every distribution of the app's interpreter (pandas, numpy, pyarrow, pyspark, Django,
...) to its installed version. Requirements the base already satisfies are not installed again,
and a requirement that conflicts with a base package fails the build instead of replacing it.
The sandbox appends the environment's site-packages to sys.path, after the standard library and
the base packages, so the base stays authoritative.

pip (and any sdist's build code: user code) runs under bubblewrap when it is installed: a
read-only root, a private /tmp, the hidden paths covered and only the build directory writable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from connector_engine.system.bubblewrap import paths_under_tmp

MAX_LOG_CHARS = 200_000  # the end of pip's output kept as the build log
MANIFEST = "manifest.json"
BUILD_LOG = "build.log"
PACKAGE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.(whl|tar\.gz|zip)$")


class RequirementsError(ValueError):
    """Requirement text with bad lines; `problems` holds one message per bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_requirements(text: str) -> tuple[list[str], list[str]]:
    """Return (normalised requirement lines, one problem message per bad line).

    One PEP 508 requirement per line; blank lines and `#` comments are allowed. pip options
    (-e, -r, --index-url, ...) and direct references (name @ URL, paths) are refused: package
    files are uploaded to the connection, the index is the server's configuration.
    """
    requirements: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = re.split(r"(^|\s)#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            problems.append(
                f"Line {number}: pip options such as {line.split()[0]!r} are not allowed; "
                "write one requirement per line (upload package files to the connection)."
            )
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            message = str(exc).splitlines()[0]
            problems.append(f"Line {number}: {line!r} is not a PEP 508 requirement ({message}).")
            continue
        if requirement.url:
            problems.append(
                f"Line {number}: direct references ({requirement.name} @ ...) are not allowed; "
                f"upload the file to the connection and require {requirement.name!r} by name."
            )
            continue
        requirements.append(str(requirement))
    return requirements, problems


def requirement_lines(text: str) -> list[str]:
    """Return the normalised requirement lines of `text`; raise RequirementsError on bad lines."""
    requirements, problems = parse_requirements(text)
    if problems:
        raise RequirementsError(problems)
    return requirements


def package_file_problem(name: str) -> str | None:
    """Say what is wrong with an uploaded package file's name, or None when it is usable."""
    if not PACKAGE_FILE_NAME.match(name):
        return (
            f"{name!r} is not a package file name: upload a wheel (.whl) or a source "
            "distribution (.tar.gz or .zip) under the name pip gave it."
        )
    try:
        if name.endswith(".whl"):
            parse_wheel_filename(name)
        else:
            parse_sdist_filename(name)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        return f"{name!r} is not a valid package file name: {exc}"
    return None


@dataclass(frozen=True)
class PackageFileRef:
    """An uploaded package file: its name (what pip sees), content hash and where it is stored."""

    name: str
    sha256: str
    path: str


@dataclass(frozen=True)
class EnvironmentSpec:
    """What an environment holds: normalised requirement lines and uploaded package files."""

    requirements: tuple[str, ...] = ()
    files: tuple[PackageFileRef, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.files

    @property
    def key(self) -> str:
        return environment_key(self)

    def describe(self) -> dict[str, Any]:
        return {
            "python": python_tag(),
            "requirements": list(self.requirements),
            "files": [{"name": f.name, "sha256": f.sha256} for f in self.files],
        }


def environment_spec(
    requirement_texts: Iterable[str], files: Iterable[PackageFileRef] = ()
) -> EnvironmentSpec:
    """Combine requirement texts (connection's, then connector's) and files into a spec."""
    lines: set[str] = set()
    for text in requirement_texts:
        lines.update(requirement_lines(text))
    ordered_files = sorted(set(files), key=lambda f: (f.name, f.sha256))
    return EnvironmentSpec(tuple(sorted(lines)), tuple(ordered_files))


def python_tag() -> str:
    return f"{sys.implementation.name}-{platform.python_version()}"


@lru_cache(maxsize=1)
def base_constraints() -> str:
    """Pin every distribution installed in the app's interpreter to its version (pip -c)."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and dist.version:
            pins[name.lower()] = f"{name}=={dist.version}"
    return "".join(f"{pins[name]}\n" for name in sorted(pins))


def environment_key(spec: EnvironmentSpec) -> str:
    """The environment's identity: a hash of the interpreter, the base, requirements and files."""
    identity = {
        **spec.describe(),
        "base": hashlib.sha256(base_constraints().encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ReadyEnvironment:
    """A built environment: the directories to add to sys.path, and its on-disk identity."""

    key: str
    path: str
    python_paths: tuple[str, ...]
    # Changes when the environment is rebuilt, so warm workers of the old build are not reused.
    generation: int


@dataclass
class BuildOutcome:
    """The result of ensuring an environment exists: ready (built now or before) or failed."""

    key: str
    ok: bool
    built: bool = False  # pip ran in this call (False: reused a ready or failed build)
    ready: ReadyEnvironment | None = None
    error: str = ""  # pip's error lines, for "the environment failed to build: ..."
    log: str = ""
    packages: list[list[str]] = field(default_factory=list)  # [[name, version], ...]
    size_bytes: int = 0
    built_at: float | None = None
    duration_s: float = 0.0


class EnvironmentStore:
    """Environments under `root`, built with pip by at most one process at a time per key."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        pip_args: Sequence[str] = (),
        timeout_s: float = 900.0,
        hidden_paths: Sequence[str] = (),
        use_bwrap: bool | None = None,
    ) -> None:
        self.root = Path(root)
        self.pip_args = list(pip_args)
        self.timeout_s = timeout_s
        self.hidden_paths = [os.path.abspath(path) for path in hidden_paths]
        bwrap = shutil.which("bwrap")
        self._bwrap = bwrap if (use_bwrap is None or use_bwrap) else None

    # ---------------------------------------------------------------- reads

    def ready(self, key: str) -> ReadyEnvironment | None:
        """Return the ready environment `key`, or None (two stat calls and a small read)."""
        path = self.root / key
        try:
            generation = os.stat(path).st_ino
            paths = json.loads((path / MANIFEST).read_text())["python_paths"]
        except (OSError, ValueError, KeyError):
            return None
        python_paths = tuple(str(path / relative) for relative in paths)
        return ReadyEnvironment(key, str(path), python_paths, generation)

    def failure(self, key: str) -> BuildOutcome | None:
        """Return the recorded failed build of `key`, or None."""
        try:
            data = json.loads((self.root / f"{key}.failed.json").read_text())
        except (OSError, ValueError):
            return None
        return BuildOutcome(
            key=key,
            ok=False,
            error=data.get("error", ""),
            log=data.get("log", ""),
            built_at=data.get("built_at"),
            duration_s=data.get("duration_s", 0.0),
        )

    def outcome(self, key: str) -> BuildOutcome | None:
        """Return what is known on disk about `key`: ready, failed, or None (never built)."""
        ready = self.ready(key)
        if ready is not None:
            manifest = json.loads((Path(ready.path) / MANIFEST).read_text())
            return BuildOutcome(
                key=key,
                ok=True,
                ready=ready,
                log=_read_text(Path(ready.path) / BUILD_LOG),
                packages=manifest.get("packages", []),
                size_bytes=manifest.get("size_bytes", 0),
                built_at=manifest.get("built_at"),
                duration_s=manifest.get("duration_s", 0.0),
            )
        return self.failure(key)

    def environment_keys(self) -> list[str]:
        """Keys of the environments on disk (ready or failed)."""
        if not self.root.is_dir():
            return []
        keys = set()
        for entry in self.root.iterdir():
            name = entry.name
            if name.endswith(".failed.json"):
                keys.add(name.removesuffix(".failed.json"))
            elif re.fullmatch(r"[0-9a-f]{64}", name) and entry.is_dir():
                keys.add(name)
        return sorted(keys)

    # ---------------------------------------------------------------- writes

    def ensure(self, spec: EnvironmentSpec, *, force: bool = False) -> BuildOutcome:
        """Return the environment for `spec`, building it when it is neither ready nor failed.

        Concurrent callers (threads or processes) build it once: the others wait for the lock
        and reuse the result. `force` rebuilds even a ready or failed environment.
        """
        key = spec.key
        if not force:
            known = self.known(key)
            if known is not None:
                return known
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock(key):
            if not force:
                known = self.known(key)  # built (or failed) while we waited for the lock
                if known is not None:
                    return known
            return self._build(spec)

    def remove(self, key: str) -> bool:
        """Remove environment `key` (ready and failed records); return whether it existed."""
        existed = False
        with self._lock(key):
            path = self.root / key
            if path.exists():
                retired = self.root / f"{key}.retired-{secrets.token_hex(4)}"
                os.rename(path, retired)
                shutil.rmtree(retired, ignore_errors=True)
                existed = True
            with contextlib.suppress(FileNotFoundError):
                (self.root / f"{key}.failed.json").unlink()
                existed = True
        # The lock file stays: unlinking it could let two builders lock different files.
        return existed

    def sweep(self, older_than_s: float) -> list[str]:
        """Remove leftovers of builds that died (building/retired dirs older than the age)."""
        removed = []
        if not self.root.is_dir():
            return removed
        cutoff = time.time() - older_than_s
        for entry in self.root.iterdir():
            if ".building-" in entry.name or ".retired-" in entry.name:
                with contextlib.suppress(OSError):
                    if entry.lstat().st_mtime < cutoff:
                        shutil.rmtree(entry, ignore_errors=True)
                        removed.append(entry.name)
        return removed

    # ---------------------------------------------------------------- building

    def known(self, key: str) -> BuildOutcome | None:
        """Return ready or failed (without details) for `key`, or None when never built."""
        ready = self.ready(key)
        if ready is not None:
            return BuildOutcome(key=key, ok=True, ready=ready)
        return self.failure(key)

    @contextlib.contextmanager
    def _lock(self, key: str):
        self.root.mkdir(parents=True, exist_ok=True)
        # One open file description per caller, so threads of one process exclude each other.
        with open(self.root / f"{key}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _build(self, spec: EnvironmentSpec) -> BuildOutcome:
        """Run pip into a fresh directory; publish it as <key> only when pip succeeded."""
        key = spec.key
        started = time.monotonic()
        building = self.root / f"{key}.building-{secrets.token_hex(4)}"
        building.mkdir(mode=0o755)
        try:
            argv = self._pip_argv(spec, building)
            returncode, log = self._run(argv, building)
            duration = round(time.monotonic() - started, 3)
            if returncode != 0:
                return self._record_failure(key, log, duration)
            for scratch in ("files", "constraints.txt"):
                target = building / scratch
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
            python_paths = _site_directories(building)
            packages = _installed_packages(building / p for p in python_paths)
            manifest = {
                **spec.describe(),
                "key": key,
                "python_paths": python_paths,
                "packages": packages,
                "size_bytes": _tree_size(building),
                "built_at": time.time(),
                "duration_s": duration,
            }
            (building / BUILD_LOG).write_text(log)
            (building / MANIFEST).write_text(json.dumps(manifest, indent=1))
            self._publish(key, building)
            with contextlib.suppress(FileNotFoundError):
                (self.root / f"{key}.failed.json").unlink()
            return BuildOutcome(
                key=key,
                ok=True,
                built=True,
                ready=self.ready(key),
                log=log,
                packages=packages,
                size_bytes=manifest["size_bytes"],
                built_at=manifest["built_at"],
                duration_s=duration,
            )
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)

    def _publish(self, key: str, building: Path) -> None:
        """Atomically make `building` the environment `key` (replacing an older build)."""
        target = self.root / key
        if target.exists():
            retired = self.root / f"{key}.retired-{secrets.token_hex(4)}"
            os.rename(target, retired)
            os.rename(building, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(building, target)

    def _record_failure(self, key: str, log: str, duration: float) -> BuildOutcome:
        outcome = BuildOutcome(
            key=key,
            ok=False,
            built=True,
            error=pip_error(log),
            log=log,
            built_at=time.time(),
            duration_s=duration,
        )
        record = {
            "error": outcome.error,
            "log": log,
            "built_at": outcome.built_at,
            "duration_s": duration,
        }
        failed = self.root / f"{key}.failed.json"
        partial = failed.with_name(f"{failed.name}.{secrets.token_hex(4)}")
        partial.write_text(json.dumps(record))
        os.replace(partial, failed)
        return outcome

    def _pip_argv(self, spec: EnvironmentSpec, building: Path) -> list[str]:
        constraints = building / "constraints.txt"
        constraints.write_text(base_constraints())
        argv = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--prefix",
            str(building),
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
            files = building / "files"
            files.mkdir()
            for ref in spec.files:
                shutil.copyfile(ref.path, files / ref.name)
            # Requirement lines may name an uploaded file's project: pip finds it here.
            argv += ["--find-links", str(files), *(str(files / ref.name) for ref in spec.files)]
        return [*argv, *spec.requirements]

    def _run(self, argv: list[str], building: Path) -> tuple[int, str]:
        """Run pip (under bubblewrap when available); return its exit status and output."""
        header = f"$ {' '.join(argv[2:])}\n"
        if self._bwrap:
            argv = [*self._bwrap_prefix(building), *argv]
        else:
            header += "(bubblewrap is not installed: pip runs without a sandbox)\n"
        try:
            process = subprocess.Popen(
                argv,
                env=_pip_environment(),
                cwd=str(building),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return 1, f"{header}ERROR: could not start pip: {exc}\n"
        try:
            output, _ = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            text = output.decode(errors="replace")
            return 1, _cut(
                f"{header}{text}\nERROR: the build took longer than {self.timeout_s:g} s and was "
                "stopped.\n"
            )
        return process.returncode, _cut(header + output.decode(errors="replace"))

    def _bwrap_prefix(self, building: Path) -> list[str]:
        """bubblewrap for pip: read-only root, private /tmp, hidden paths, one writable dir."""
        argv = [self._bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        argv += ["--tmpfs", "/tmp"]
        for path in paths_under_tmp():
            argv += ["--ro-bind", path, path]
        for path in self.hidden_paths:
            if os.path.isdir(path):
                argv += ["--tmpfs", path]
            elif os.path.exists(path):
                argv += ["--ro-bind", "/dev/null", path]
        # After the hidden paths: the build directory may lie inside one of them.
        argv += ["--bind", str(building), str(building)]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
        return [*argv, "--new-session", "--chdir", str(building), "--"]


def pip_error(log: str) -> str:
    """pip's own error lines from a build log (or its last lines when there are none)."""
    lines = log.strip().splitlines()
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors or lines[-5:]
    return "\n".join(chosen)[-4000:]


def _pip_environment() -> dict[str, str]:
    """pip's environment: the server's pip configuration (PIP_*), nothing else of its own."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # pip's user configuration file lives there
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
    }
    env.update({name: value for name, value in os.environ.items() if name.startswith("PIP_")})
    return env


def _site_directories(prefix: Path) -> list[str]:
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


def _installed_packages(directories: Iterable[Path]) -> list[list[str]]:
    found = {}
    for dist in importlib.metadata.distributions(path=[str(d) for d in directories]):
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = [name, dist.version]
    return [found[name] for name in sorted(found)]


def _tree_size(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _cut(text: str) -> str:
    if len(text) <= MAX_LOG_CHARS:
        return text
    return f"[... {len(text) - MAX_LOG_CHARS} characters cut ...]\n" + text[-MAX_LOG_CHARS:]
