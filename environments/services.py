"""Writes to package files and environments: uploads, builds, rebuilds and pruning."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connections import audit
from connections.models import AuditAction, Connection, Connector
from connector_engine.environments.requirements import RequirementsError, package_file_problem
from connector_engine.environments.spec import EnvironmentSpec, environment_spec, python_tag
from connector_engine.environments.store import BuildOutcome, EnvironmentStore, ReadyEnvironment
from connector_engine.protocol import ErrorType, make_error
from connectors_site import engine_config
from environments.models import Environment, EnvironmentStatus, PackageFile
from environments.selectors import connector_environment_spec

# ---------------------------------------------------------------- package files


def package_file_add(
    *, connection: Connection, filename: str, chunks: Iterable[bytes], uploaded_by=None
) -> PackageFile:
    """Store an uploaded wheel or sdist for a connection; a file of the same name is replaced.

    Raises ValidationError for a bad name, a file over ENVIRONMENT_UPLOAD_MAX_MB, or content
    that is not a zip (.whl, .zip) or gzip (.tar.gz) archive.
    """
    if problem := package_file_problem(filename):
        raise ValidationError(problem)
    limit = settings.ENVIRONMENT_UPLOAD_MAX_MB * 1024 * 1024
    root = _package_files_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = root / f"upload-{secrets.token_hex(8)}.partial"
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as handle:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ValidationError(
                        f"{filename} is larger than {settings.ENVIRONMENT_UPLOAD_MAX_MB} MB."
                    )
                digest.update(chunk)
                handle.write(chunk)
        _check_archive(partial, filename)
        sha256 = digest.hexdigest()
        target = root / sha256 / filename
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    with transaction.atomic():
        previous = PackageFile.objects.filter(connection=connection, filename=filename).first()
        if previous is not None:
            previous.delete()
        package_file = PackageFile.objects.create(
            connection=connection,
            filename=filename,
            sha256=sha256,
            size_bytes=size,
            uploaded_by=uploaded_by,
        )
        details = {"sha256": sha256, "size_bytes": size, "replaced": previous is not None}
        audit.record(
            connection=connection,
            action=AuditAction.FILE_UPLOADED,
            target=filename,
            details=details,
        )
    if previous is not None and previous.sha256 != sha256:
        _remove_unreferenced_file(previous)
    return package_file


def package_file_delete(*, package_file: PackageFile) -> None:
    """Remove an uploaded package file (its bytes too, unless another connection has them)."""
    with transaction.atomic():
        package_file.delete()
        audit.record(
            connection=package_file.connection,
            action=AuditAction.FILE_DELETED,
            target=package_file.filename,
            details={"sha256": package_file.sha256},
        )
    _remove_unreferenced_file(package_file)


def _package_files_root() -> Path:
    return Path(settings.DATA_DIR) / "package-files"


def _check_archive(path: Path, filename: str) -> None:
    if filename.endswith((".whl", ".zip")):
        valid = zipfile.is_zipfile(path)
    else:
        with open(path, "rb") as handle:
            valid = handle.read(2) == b"\x1f\x8b"
        if valid:
            try:
                with gzip.open(path) as archive:
                    archive.read(512)
            except (OSError, EOFError):
                valid = False
    if not valid:
        kind = "gzip-compressed tar" if filename.endswith(".tar.gz") else "zip"
        raise ValidationError(f"{filename} is not a {kind} archive.")


def _remove_unreferenced_file(package_file: PackageFile) -> None:
    if PackageFile.objects.filter(
        sha256=package_file.sha256, filename=package_file.filename
    ).exists():
        return
    path = package_file.storage_path
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


# ---------------------------------------------------------------- environments

LAST_USED_RESOLUTION_S = 60.0  # last_used_at is written at most this often per environment
# When this process last wrote last_used_at, per environment directory (store root and key).
_last_used_written: dict[str, float] = {}
_last_used_lock = threading.Lock()


@dataclass(frozen=True)
class ConnectorEnvironment:
    """The environment a connector runs in: None key for no packages, or why it cannot run
    (it failed to build, or it is still being built in the background)."""

    key: str | None = None
    ready: ReadyEnvironment | None = None
    error: str = ""  # "The environment failed to build: ..." (then `ready` is None)
    log: str = ""
    building: bool = False  # not built yet: its build runs (or is queued) in the worker

    @property
    def ok(self) -> bool:
        return not self.error

    def run_error(self) -> dict[str, Any]:
        """The error of a run that cannot use this environment: pip's build log as its trace."""
        kind = ErrorType.ENVIRONMENT_BUILDING if self.building else ErrorType.ENVIRONMENT_ERROR
        return make_error(kind, self.error, traceback=self.log)


def connector_environment_ensure(
    *, connector: Connector, packages: str | None = None
) -> ConnectorEnvironment:
    """Return the connector's environment, building it first when needed (callers wait).

    Connection packages + connector packages (`packages` instead of the saved ones: the
    editor's) + the connection's uploaded files; a connector with none of them runs in the base
    environment (key None). Callers run their sandbox requests in `ready`
    (engine_config.sandboxes().lease(ready)) and record `key` on the run; when `ok` is False
    they fail the run with `run_error()`. The worker (ingests, background builds) and the
    commands wait; web requests use `connector_environment_current` and leave the build to the
    worker (environments.tasks).
    """
    return _connector_environment(connector, packages, build=True)


def connector_environment_current(
    *, connector: Connector, packages: str | None = None
) -> ConnectorEnvironment:
    """Return the connector's environment (with `packages` as its own, when given) as it is
    now, never building: one not built yet is `building` (its build is the worker's:
    environments.tasks.connector_environment_start)."""
    return _connector_environment(connector, packages, build=False)


def packages_environment_ensure(*, packages: str) -> ConnectorEnvironment:
    """Return the environment of these requirements alone (a connector file previewed outside
    any connection, with network access), building it first when needed (callers wait)."""
    return _packages_environment(packages, build=True)


def packages_environment_current(*, packages: str) -> ConnectorEnvironment:
    """Return the environment of these requirements alone as it is now, never building."""
    return _packages_environment(packages, build=False)


def _packages_environment(packages: str, *, build: bool) -> ConnectorEnvironment:
    try:
        spec = environment_spec([packages])
    except RequirementsError as exc:
        return ConnectorEnvironment(error="The requirements are invalid: " + " ".join(exc.problems))
    return _spec_environment(spec, build=build)


def _connector_environment(
    connector: Connector, packages: str | None, *, build: bool
) -> ConnectorEnvironment:
    try:
        spec = connector_environment_spec(connector, packages)
    except RequirementsError as exc:
        return ConnectorEnvironment(error="The requirements are invalid: " + " ".join(exc.problems))
    return _spec_environment(spec, build=build)


def _spec_environment(spec: EnvironmentSpec, *, build: bool) -> ConnectorEnvironment:
    if spec.empty:
        return ConnectorEnvironment()
    if build:
        outcome = environment_ensure(spec=spec)
    else:
        store = engine_config.environment_store()
        known = store.known(spec.key)
        if known is None:
            return ConnectorEnvironment(
                key=spec.key,
                building=True,
                error=(
                    "The package environment is being built in the background; run this again "
                    "in a moment (the connection page shows the environments of saved packages "
                    "as they build)."
                ),
            )
        _environment_used(store, spec, known)
        outcome = known
    if not outcome.ok:
        return ConnectorEnvironment(
            key=outcome.key,
            error=f"The environment failed to build: {outcome.error}",
            log=outcome.log,
        )
    return ConnectorEnvironment(key=outcome.key, ready=outcome.ready)


def environment_build_claim(*, connector: Connector, packages: str | None = None) -> bool:
    """Mark the connector's environment (with `packages` as its own, when given) building;
    False when a build of it already runs (one started within ENVIRONMENT_BUILD_TIMEOUT_S), so
    a build is queued once."""
    spec = connector_environment_spec(connector, packages)
    started = timezone.now()
    recent = started - timedelta(seconds=settings.ENVIRONMENT_BUILD_TIMEOUT_S)
    with transaction.atomic():
        row = Environment.objects.select_for_update().filter(key=spec.key).first()
        building = row is not None and row.status == EnvironmentStatus.BUILDING
        if building and row.build_started_at and row.build_started_at > recent:
            return False
        _environment_building(spec, started)
    return True


def environment_ensure(*, spec: EnvironmentSpec, force: bool = False) -> BuildOutcome:
    """Return the environment for `spec`, building it once (or again with `force`); record it.

    Fast path (the environment is ready or has failed): a stat, a small read and, at most once
    a minute, an UPDATE of last_used_at.
    """
    store = engine_config.environment_store()
    if not force:
        known = store.known(spec.key)
        if known is not None:
            _environment_used(store, spec, known)
            return known
    _environment_building(spec, timezone.now())
    outcome = store.ensure(spec, force=force)
    _environment_record(spec, outcome if outcome.built else store.outcome(spec.key) or outcome)
    if force:
        engine_config.sandboxes().stop(spec.key)  # the next request starts on the new build
    if outcome.built and outcome.ok:
        environments_prune()
    return outcome


def _environment_building(spec: EnvironmentSpec, started: datetime) -> None:
    """Record that a build of `spec` started."""
    Environment.objects.update_or_create(
        key=spec.key,
        defaults={"status": EnvironmentStatus.BUILDING, "build_started_at": started},
        create_defaults={
            "status": EnvironmentStatus.BUILDING,
            "build_started_at": started,
            "python": python_tag(),
            "requirements": list(spec.requirements),
            "files": spec.describe()["files"],
        },
    )


def environments_prune(*, max_idle_days: float | None = None) -> list[str]:
    """Remove environments unused for ENVIRONMENT_MAX_IDLE_DAYS; return their keys.

    Also removes leftovers of builds that died and environment directories without a row.
    """
    days = settings.ENVIRONMENT_MAX_IDLE_DAYS if max_idle_days is None else max_idle_days
    cutoff = timezone.now() - timedelta(days=days)
    store = engine_config.environment_store()
    store.sweep(older_than_s=settings.ENVIRONMENT_BUILD_TIMEOUT_S + 60)
    stale = Environment.objects.exclude(status=EnvironmentStatus.BUILDING).filter(
        Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    )
    removed = []
    for key in stale.values_list("key", flat=True):
        store.remove(key)
        engine_config.sandboxes().stop(key)
        removed.append(key)
    Environment.objects.filter(key__in=removed).delete()
    recorded = set(Environment.objects.values_list("key", flat=True))
    for key in store.environment_keys():
        if key in recorded:
            continue
        outcome = store.outcome(key)
        built_at = outcome.built_at if outcome else None
        if built_at is None or datetime.fromtimestamp(built_at, UTC) < cutoff:
            store.remove(key)
            engine_config.sandboxes().stop(key)
            removed.append(key)
    return removed


def _environment_used(store: EnvironmentStore, spec: EnvironmentSpec, known: BuildOutcome) -> None:
    """Note that the environment was used (written at most once a minute per process)."""
    now = time.monotonic()
    directory = str(store.root / spec.key)
    with _last_used_lock:
        if now - _last_used_written.get(directory, float("-inf")) < LAST_USED_RESOLUTION_S:
            return
        _last_used_written[directory] = now
    updated = Environment.objects.filter(key=spec.key).update(last_used_at=timezone.now())
    if not updated:  # built by an earlier database, or its row was removed
        _environment_record(spec, store.outcome(spec.key) or known)


def _environment_record(spec: EnvironmentSpec, outcome: BuildOutcome) -> None:
    def when(timestamp: float | None) -> datetime | None:
        return datetime.fromtimestamp(timestamp, UTC) if timestamp else None

    Environment.objects.update_or_create(
        key=spec.key,
        defaults={
            "status": EnvironmentStatus.READY if outcome.ok else EnvironmentStatus.FAILED,
            "python": python_tag(),
            "requirements": list(spec.requirements),
            "files": spec.describe()["files"],
            "packages": outcome.packages,
            "error": outcome.error,
            "build_log": outcome.log,
            "size_bytes": outcome.size_bytes if outcome.ok else None,
            "build_seconds": outcome.duration_s,
            "built_at": when(outcome.built_at),
            "last_used_at": timezone.now(),
        },
    )
