"""The layout of the partitions store, the same on a local directory and on an object store.

    <connector id>/<partition key>/<file name>.parquet

- The connector's *id*, not its slug: slugs can be renamed, ids cannot.
- The partition key is a readable, sanitized prefix of the partition name plus a hash of the
  full name (`orders_2024-01.csv-1f3a...`): names may contain "/", "..", NUL or anything else,
  and two names that sanitize alike still get different keys. It can never escape the store.
- The file name is a sanitized prefix of the fingerprint plus a hash of (fingerprint, code
  fingerprint): a re-read always writes a new file next to the committed one. On an object
  store it also gets a unique suffix (`.<random>.parquet`), so even a re-read of the same
  version never writes over a committed object.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

PARQUET_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
READABLE_CHARS = 48


@dataclass(frozen=True)
class WrittenPartition:
    """A Parquet file written to its final place in the store (not yet committed)."""

    storage_path: str  # relative to the store's root
    rows: int
    bytes: int
    schema: list[dict[str, str]]


@dataclass(frozen=True)
class StagedPartition:
    """A Parquet file written, not yet published.

    In a local directory it sits under a temporary name (`temp`), neither durable nor in place
    (`final`) until `publish_partitions`. On an object store it is already uploaded under its
    final, unique key (`written.storage_path`): `temp` and `final` are None.
    """

    written: WrittenPartition
    temp: Path | None = None
    final: Path | None = None
    new_directories: tuple[Path, ...] = ()  # created for it: their parents need an fsync


def _digest(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def _readable(text: str) -> str:
    """Return a filesystem-safe readable prefix: no separators, no leading dots."""
    return _UNSAFE.sub("_", text).lstrip(".")[:READABLE_CHARS].rstrip(".")


def partition_key(name: str) -> str:
    """Return the directory name of a partition: a safe prefix plus a hash of the whole name."""
    readable = _readable(name)
    hashed = _digest(name)[:20]
    return f"{readable}-{hashed}" if readable else hashed


def partition_file_name(fingerprint: str, code_fingerprint: str) -> str:
    """Return the Parquet file name for one version of a partition."""
    readable = _readable(fingerprint)[:24]
    hashed = _digest(fingerprint, code_fingerprint)[:20]
    return f"{readable}-{hashed}{PARQUET_SUFFIX}" if readable else f"{hashed}{PARQUET_SUFFIX}"


def partition_storage_path(
    connector_id: int, name: str, fingerprint: str, code_fingerprint: str
) -> str:
    """Return where a partition version is stored, relative to the store's root."""
    file_name = partition_file_name(fingerprint, code_fingerprint)
    return f"{int(connector_id)}/{partition_key(name)}/{file_name}"


def unique_storage_path(storage_path: str) -> str:
    """Return `storage_path` with a random suffix before `.parquet`: a key no one wrote yet."""
    stem = storage_path.removesuffix(PARQUET_SUFFIX)
    return f"{stem}.{uuid.uuid4().hex[:16]}{PARQUET_SUFFIX}"


def checked_storage_path(storage_path: str) -> str:
    """Return a stored relative path as it is, refusing one that could leave the store's root
    or name it ("", "/a", "a//b", "a/../b", "a/./b", backslashes)."""
    parts = storage_path.split("/")
    if (
        not storage_path
        or "\\" in storage_path
        or "\0" in storage_path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"{storage_path!r} is outside the partitions directory")
    return storage_path
