"""Where committed partitions live on disk, and how they get there atomically.

Layout, under settings.PARTITIONS_DIR (never visible inside the sandbox):

    <connector id>/<partition key>/<file name>.parquet

- The connector's *id*, not its slug: slugs can be renamed, ids cannot.
- The partition key is a readable, sanitized prefix of the partition name plus a hash of the
  full name (`orders_2024-01.csv-1f3a...`): names may contain "/", "..", NUL or anything else,
  and two names that sanitize alike still get different keys. It can never escape the directory.
- The file name is a sanitized prefix of the fingerprint plus a hash of (fingerprint, code
  fingerprint): a re-read always writes a new file next to the committed one, never over it.

Writing: Parquet goes to a hidden temporary file (`.<name>.<random>.tmp`) in the target
directory, is fsynced, renamed into place and the directory is fsynced; only then does the
caller commit the Partition row. A batch of partitions is written in two steps
(`stage_partition` for each, then one `publish_partitions`) so their fsyncs run back to back
and each directory is fsynced once; the guarantee per file is the same. Old files are removed
only after that commit. A crash therefore leaves at most temporary files and unreferenced
(orphan) Parquet files, which `sweep_connector_directory` removes when no ingest of the
connector is running.

Paths stored in Partition.storage_path are relative to PARTITIONS_DIR, so the directory can be
moved by changing the setting.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
from django.conf import settings

from connector_engine.tabular import json_rows, table_columns

PARQUET_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
READABLE_CHARS = 48


@dataclass(frozen=True)
class WrittenPartition:
    """A Parquet file written and renamed into place (not yet committed)."""

    storage_path: str  # relative to PARTITIONS_DIR
    rows: int
    bytes: int
    schema: list[dict[str, str]]


def partitions_root() -> Path:
    return Path(settings.PARTITIONS_DIR)


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


def connector_directory(connector_id: int) -> Path:
    return partitions_root() / str(int(connector_id))


def partition_storage_path(
    connector_id: int, name: str, fingerprint: str, code_fingerprint: str
) -> str:
    """Return where a partition version is stored, relative to PARTITIONS_DIR."""
    file_name = partition_file_name(fingerprint, code_fingerprint)
    return f"{int(connector_id)}/{partition_key(name)}/{file_name}"


def absolute_path(storage_path: str) -> Path:
    """Resolve a stored relative path, refusing anything outside PARTITIONS_DIR."""
    root = partitions_root().resolve()
    path = (root / storage_path).resolve()
    if root not in path.parents:
        raise ValueError(f"{storage_path!r} is outside the partitions directory")
    return path


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class StagedPartition:
    """A Parquet file written to its temporary name, not yet durable nor in place."""

    temp: Path
    final: Path
    new_directories: tuple[Path, ...]  # created for it: their parents need an fsync
    written: WrittenPartition


def stage_partition(table_ipc: bytes, storage_path: str) -> StagedPartition:
    """Write an Arrow IPC stream as Parquet to a temporary file beside `storage_path`."""
    return stage_table(pa.ipc.open_stream(table_ipc).read_all(), storage_path)


def _temporary_beside(storage_path: str) -> tuple[Path, Path, tuple[Path, ...]]:
    """Return (final path, a fresh temporary path beside it, the directories created for it)."""
    final = absolute_path(storage_path)
    directory = final.parent
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return final, directory / f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}", tuple(missing)


def stage_table(table: pa.Table, storage_path: str) -> StagedPartition:
    """Write an Arrow table as Parquet to a temporary file beside `storage_path`."""
    final, temp, missing = _temporary_beside(storage_path)
    try:
        with open(temp, "wb") as handle:
            pq.write_table(table, handle)
            size = handle.tell()
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    written = WrittenPartition(storage_path, table.num_rows, size, table_columns(table.schema))
    return StagedPartition(temp, final, missing, written)


def stage_parquet_file(source: Path, storage_path: str) -> StagedPartition:
    """Move a Parquet file written elsewhere (by Spark) to a temporary file beside
    `storage_path`: a rename on the same filesystem, else a copy. Rows and schema come from its
    footer."""
    final, temp, missing = _temporary_beside(storage_path)
    try:
        try:
            os.replace(source, temp)
        except OSError:  # another filesystem
            shutil.copyfile(source, temp)
        os.chmod(temp, 0o600)
        metadata = pq.read_metadata(temp)
        schema = metadata.schema.to_arrow_schema()
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    written = WrittenPartition(
        storage_path, metadata.num_rows, temp.stat().st_size, table_columns(schema)
    )
    return StagedPartition(temp, final, missing, written)


def publish_partitions(staged: list[StagedPartition]) -> list[WrittenPartition]:
    """Make staged files durable and rename them into place; return them in order.

    Every file is fsynced, then renamed, then each directory involved is fsynced once, so a
    batch of files shares the waits for the disk. When this returns, every file is durable
    under its final name; when it raises, none of the temporary files is left.
    """
    try:
        for item in staged:
            fd = os.open(item.temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for item in staged:
            os.replace(item.temp, item.final)
    except BaseException:
        for item in staged:
            with contextlib.suppress(OSError):
                item.temp.unlink()
        raise
    directories = {item.final.parent for item in staged}
    directories |= {path.parent for item in staged for path in item.new_directories}
    for directory in sorted(directories, key=lambda path: len(path.parts), reverse=True):
        _fsync_directory(directory)
    return [item.written for item in staged]


def remove_partition_file(storage_path: str) -> None:
    """Delete a partition file (after the commit that stopped referencing it)."""
    if not storage_path:
        return
    try:
        path = absolute_path(storage_path)
    except ValueError:
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty


def sweep_connector_directory(connector_id: int, keep: set[str]) -> None:
    """Remove temporary files and Parquet files no committed partition references.

    Only call this while no ingest of the connector is running: a running one owns its
    temporary files and its written-but-not-yet-committed files.
    """
    directory = connector_directory(connector_id)
    if not directory.is_dir():
        return
    root = partitions_root()
    for key_dir in directory.iterdir():
        if not key_dir.is_dir():
            continue
        for path in key_dir.iterdir():
            if path.name.endswith(TEMP_SUFFIX) or path.relative_to(root).as_posix() not in keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        with contextlib.suppress(OSError):
            key_dir.rmdir()


def connector_directories() -> list[int]:
    """Return the connector ids that have a directory under PARTITIONS_DIR."""
    root = partitions_root()
    if not root.is_dir():
        return []
    return sorted(int(path.name) for path in root.iterdir() if path.name.isdigit())


def read_partition_preview(storage_path: str, limit: int = 100) -> dict[str, Any]:
    """Return the first `limit` rows of a committed partition as JSON-safe columns and rows."""
    parquet = pq.ParquetFile(absolute_path(storage_path))
    batches = []
    remaining = limit
    for batch in parquet.iter_batches(batch_size=max(min(limit, 10_000), 1)):
        if remaining <= 0:
            break
        batch = batch.slice(0, remaining)
        batches.append(batch)
        remaining -= batch.num_rows
    schema = parquet.schema_arrow
    table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    row_count = parquet.metadata.num_rows
    return {
        "columns": table_columns(schema),
        "rows": json_rows(table),
        "row_count": row_count,
        "truncated": row_count > table.num_rows,
    }
