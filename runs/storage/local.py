"""The partitions store in a local directory: temporary file, fsync, rename.

Parquet goes to a hidden temporary file (`.<name>.<random>.tmp`) in the target directory, is
fsynced, renamed into place and the directory is fsynced; only then does the caller commit the
Partition row. A batch of partitions is written in two steps (`stage_table` or
`stage_parquet_file` for each, then one `publish`) so their fsyncs run back to back and each
directory is fsynced once; the guarantee per file is the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connector_engine.tabular import table_columns
from runs.storage.layout import TEMP_SUFFIX, StagedPartition, WrittenPartition


def absolute_path(root: Path, storage_path: str) -> Path:
    """Resolve a stored relative path, refusing anything outside `root`."""
    root = root.resolve()
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


def _temporary_beside(root: Path, storage_path: str) -> tuple[Path, Path, tuple[Path, ...]]:
    """Return (final path, a fresh temporary path beside it, the directories created for it)."""
    final = absolute_path(root, storage_path)
    directory = final.parent
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return final, directory / f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}", tuple(missing)


def stage_table(root: Path, table: pa.Table, storage_path: str) -> StagedPartition:
    """Write an Arrow table as Parquet to a temporary file beside `storage_path`."""
    final, temp, missing = _temporary_beside(root, storage_path)
    try:
        with open(temp, "wb") as handle:
            pq.write_table(table, handle)
            size = handle.tell()
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    written = WrittenPartition(storage_path, table.num_rows, size, table_columns(table.schema))
    return StagedPartition(written, temp, final, missing)


def stage_parquet_file(root: Path, source: Path, storage_path: str) -> StagedPartition:
    """Move a Parquet file written elsewhere to a temporary file beside `storage_path`: a
    rename on the same filesystem, else a copy. Rows and schema come from its footer."""
    final, temp, missing = _temporary_beside(root, storage_path)
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
    return StagedPartition(written, temp, final, missing)


def publish(staged: list[StagedPartition]) -> None:
    """Fsync staged files, rename them into place, fsync each directory involved once.

    When it raises, none of the temporary files is left.
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


def discard(item: StagedPartition) -> None:
    """Remove a staged file that will not be published."""
    with contextlib.suppress(OSError):
        item.temp.unlink()


def remove_file(root: Path, storage_path: str) -> None:
    """Delete a partition file, and its directory when that is left empty."""
    try:
        path = absolute_path(root, storage_path)
    except ValueError:
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty


def sweep(root: Path, connector_id: int, keep: set[str]) -> None:
    """Remove temporary files and Parquet files `keep` does not name, and empty directories."""
    directory = root / str(int(connector_id))
    if not directory.is_dir():
        return
    for key_dir in directory.iterdir():
        if not key_dir.is_dir():
            continue
        for path in key_dir.iterdir():
            if path.name.endswith(TEMP_SUFFIX) or path.relative_to(root).as_posix() not in keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        with contextlib.suppress(OSError):
            key_dir.rmdir()


def connector_ids(root: Path) -> list[int]:
    """Return the connector ids that have a directory under `root`."""
    if not root.is_dir():
        return []
    return sorted(int(path.name) for path in root.iterdir() if path.name.isdigit())
