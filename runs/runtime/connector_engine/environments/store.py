"""The environment store: pip-built environments on disk, built once per key and reused.

Django-free. `EnvironmentStore` keeps environments (identified by `EnvironmentSpec.key`, see
connector_engine.environments.spec) under one root directory:

    <root>/<key>/                 a ready environment: pip's --prefix, manifest.json, build.log
    <root>/<key>.lock             flock'ed by whoever builds <key>: concurrent builders build once
    <root>/<key>.failed.json      the last failed build (its log); sticky until a forced rebuild
    <root>/<key>.building-<rnd>/  a build in progress; renamed to <key> only when pip succeeded
    <root>/<key>.retired-<rnd>/   a replaced environment, removed right after the swap

pip runs through connector_engine.environments.build. The sandbox appends the environment's
site-packages to sys.path, after the standard library and the base packages, so the base stays
authoritative.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connector_engine.environments.build import (
    BuildLimits,
    PipInstaller,
    installed_packages,
    site_directories,
    tree_size,
)
from connector_engine.environments.pip_errors import pip_error
from connector_engine.environments.spec import EnvironmentSpec

MANIFEST = "manifest.json"
BUILD_LOG = "build.log"


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
        limits: BuildLimits | None = None,
    ) -> None:
        self.root = Path(root)
        self.installer = PipInstaller(
            pip_args=pip_args,
            timeout_s=timeout_s,
            hidden_paths=hidden_paths,
            use_bwrap=use_bwrap,
            limits=limits,
        )

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

    def known(self, key: str) -> BuildOutcome | None:
        """Return ready or failed (without details) for `key`, or None when never built."""
        ready = self.ready(key)
        if ready is not None:
            return BuildOutcome(key=key, ok=True, ready=ready)
        return self.failure(key)

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
            pip = self.installer.install(spec, building)
            log = pip.log
            duration = round(time.monotonic() - started, 3)
            if not pip.ok:
                return self._record_failure(key, log, duration)
            python_paths = site_directories(building)
            packages = installed_packages(building / p for p in python_paths)
            manifest = {
                **spec.describe(),
                "key": key,
                "python_paths": python_paths,
                "packages": packages,
                "size_bytes": tree_size(building),
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


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
