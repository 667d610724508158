"""The partitions store on an object store (S3 and its kin), which has no rename.

Each new partition version is uploaded straight to a key no one wrote before (its storage path
plus a unique suffix: runs.storage.layout), so a committed object is never written over. An
object appears whole or not at all once its upload completes, so staging it is publishing it.
The caller then commits the Partition row, and only after that deletes the key it replaced. A
crash therefore leaves at most unreferenced objects, which `sweep` removes.

pyarrow's S3 filesystem keeps a "directory" alive when its last object goes, with an empty
`<dir>/` marker object; `sweep` removes the markers of partition keys left with no object.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from connector_engine.tabular import table_columns
from runs.storage.layout import (
    StagedPartition,
    WrittenPartition,
    checked_storage_path,
    unique_storage_path,
)
from runs.storage.location import PartitionStore

logger = logging.getLogger(__name__)

UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024


def stage_table(store: PartitionStore, table: pa.Table, storage_path: str) -> StagedPartition:
    """Upload an Arrow table as Parquet to a fresh key beside `storage_path`."""
    key = unique_storage_path(checked_storage_path(storage_path))
    try:
        stream = store.filesystem.open_output_stream(store.path(key))
        try:
            pq.write_table(table, stream)
            size = stream.tell()
        finally:
            stream.close()  # completes the upload, even of a part: deleted below
    except BaseException:
        _delete_quietly(store, key)
        raise
    return StagedPartition(WrittenPartition(key, table.num_rows, size, table_columns(table.schema)))


def stage_parquet_file(store: PartitionStore, source: Path, storage_path: str) -> StagedPartition:
    """Upload a local Parquet file (written by Spark) to a fresh key beside `storage_path`, then
    remove it. Rows and schema come from its footer."""
    metadata = pq.read_metadata(source)
    schema = metadata.schema.to_arrow_schema()
    size = source.stat().st_size
    key = unique_storage_path(checked_storage_path(storage_path))
    try:
        with open(source, "rb") as handle:
            stream = store.filesystem.open_output_stream(store.path(key))
            try:
                stream.upload(handle, buffer_size=UPLOAD_CHUNK_BYTES)
            finally:
                stream.close()
    except BaseException:
        _delete_quietly(store, key)
        raise
    source.unlink(missing_ok=True)
    return StagedPartition(WrittenPartition(key, metadata.num_rows, size, table_columns(schema)))


def discard(store: PartitionStore, item: StagedPartition) -> None:
    """Delete an uploaded object that will not be committed."""
    _delete_quietly(store, item.written.storage_path)


def remove_file(store: PartitionStore, storage_path: str) -> None:
    """Delete a partition's object. A failure only leaves an unreferenced object behind, which
    the next sweep removes: it is logged, not raised (the commit before it stands)."""
    try:
        key = checked_storage_path(storage_path)
    except ValueError:
        return
    try:
        store.filesystem.delete_file(store.path(key))
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not delete %s from %s (the next sweep will): %s", key, store.url, exc)


def open_input(store: PartitionStore, storage_path: str) -> pa.NativeFile:
    """Open a partition's object for random access reads."""
    return store.filesystem.open_input_file(store.path(checked_storage_path(storage_path)))


def stored_paths(store: PartitionStore, connector_id: int) -> set[str]:
    """Return the storage paths of every object under a connector's prefix."""
    selector = pafs.FileSelector(
        store.path(str(int(connector_id))), recursive=True, allow_not_found=True
    )
    start = len(store.root) + 1 if store.root else 0
    return {
        info.path[start:]
        for info in store.filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
    }


def sweep(store: PartitionStore, connector_id: int, keep: set[str]) -> None:
    """Delete the objects under a connector's prefix that `keep` does not name, then the
    markers of partition keys left empty."""
    connector = str(int(connector_id))
    selector = pafs.FileSelector(store.path(connector), recursive=True, allow_not_found=True)
    infos = store.filesystem.get_file_info(selector)
    start = len(store.root) + 1 if store.root else 0
    kept_keys = set()
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[start:]
        if relative in keep:
            kept_keys.add(relative.split("/")[1])
            continue
        with contextlib.suppress(FileNotFoundError):
            store.filesystem.delete_file(info.path)
    for info in infos:
        relative = info.path[start:].split("/")
        empty = len(relative) == 2 and relative[1] not in kept_keys
        if info.type == pafs.FileType.Directory and empty:
            with contextlib.suppress(FileNotFoundError):
                store.filesystem.delete_dir(info.path)


def connector_ids(store: PartitionStore) -> list[int]:
    """Return the connector ids that have a prefix under the store's root."""
    selector = pafs.FileSelector(store.root, recursive=False, allow_not_found=True)
    return sorted(
        int(info.base_name)
        for info in store.filesystem.get_file_info(selector)
        if info.type == pafs.FileType.Directory and info.base_name.isdigit()
    )


def _delete_quietly(store: PartitionStore, key: str) -> None:
    """Delete an object nothing references; if that fails too, the next sweep removes it."""
    with contextlib.suppress(OSError):
        store.filesystem.delete_file(store.path(key))
