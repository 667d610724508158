"""The engine that runs connector code, free of Django.

Public surface: `connector_engine.protocol` (requests, results, limits, vocabularies, the error
shape) and one sub-package per place code runs: `child` (inside the sandboxed connector process
and Spark's Python workers), `sandbox` (the host side: warm workers, supervisors, registry),
`environments` (package environments), `spark` (the Connect server, session pool, data source)
and `ingest` (planning and batching). See docs/architecture.md.
"""

import functools
import hashlib
from pathlib import Path

# The directory this package is imported from: the sandbox fork server's and Spark's import path.
IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)


@functools.cache
def engine_sources() -> tuple[tuple[str, Path], ...]:
    """The engine's source files as (name relative to IMPORT_ROOT, path), sorted."""
    root = Path(IMPORT_ROOT)
    return tuple(
        (path.relative_to(root).as_posix(), path)
        for path in sorted((root / "connector_engine").rglob("*.py"))
    )


@functools.cache
def engine_version() -> str:
    """A hash of the engine's sources: Spark artifacts and pooled sessions are keyed by it, so a
    session never holds two versions of the engine."""
    digest = hashlib.sha256()
    for name, path in engine_sources():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
