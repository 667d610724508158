"""Where committed partitions live, and how they get there without a torn or lost version.

The store is settings.PARTITIONS_URL (runs.storage.location): a local directory (by default
PARTITIONS_DIR, never visible inside the sandbox) or an S3 bucket and prefix. Its layout is the
same on both (runs.storage.layout): `<connector id>/<partition key>/<file name>.parquet`.

The guarantee: a committed Partition row always points at a whole file of its version, and a
replaced file is removed only after the commit that stopped referencing it.
- Local directory (runs.storage.local): Parquet goes to a hidden temporary file beside its
  place, is fsynced, renamed into place and the directory is fsynced; only then does the caller
  commit the Partition row.
- Object store (runs.storage.objects): no rename, so each version is uploaded to a key no one
  wrote before (a unique suffix), complete when the upload is; then the row is committed.
A batch of partitions is written in two steps (`stage_partition` for each, then one
`publish_partitions`) so a local batch shares its fsyncs. A crash therefore leaves at most
temporary files and unreferenced (orphan) files or objects, which `sweep_connector_directory`
removes when no ingest of the connector is running.

Paths stored in Partition.storage_path are relative to the store's root, so the store can be
moved by changing the setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.ipc
import pyarrow.parquet as pq

from connector_engine.tabular import json_rows, table_columns
from runs.storage import local, objects
from runs.storage.layout import (
    PARQUET_SUFFIX,
    TEMP_SUFFIX,
    StagedPartition,
    WrittenPartition,
    partition_file_name,
    partition_key,
    partition_storage_path,
)
from runs.storage.location import PartitionStore, local_root, partition_store

__all__ = [
    "PARQUET_SUFFIX",
    "TEMP_SUFFIX",
    "PartitionStore",
    "StagedPartition",
    "WrittenPartition",
    "absolute_path",
    "connector_directories",
    "connector_directory",
    "discard_staged",
    "open_partition",
    "partition_file_name",
    "partition_key",
    "partition_storage_path",
    "partition_store",
    "partitions_root",
    "publish_partitions",
    "read_partition_preview",
    "remove_partition_file",
    "stage_parquet_file",
    "stage_partition",
    "stage_table",
    "stored_paths",
    "sweep_connector_directory",
]


def partitions_root() -> Path:
    """Return the local directory of the store (ValueError on an object store)."""
    return local_root()


def connector_directory(connector_id: int) -> Path:
    """Return a connector's local directory (ValueError on an object store)."""
    return partitions_root() / str(int(connector_id))


def absolute_path(storage_path: str) -> Path:
    """Resolve a stored relative path in the local store, refusing anything outside it."""
    return local.absolute_path(partitions_root(), storage_path)


def stage_partition(table_ipc: bytes, storage_path: str) -> StagedPartition:
    """Write an Arrow IPC stream as Parquet, staged for `storage_path`."""
    return stage_table(pa.ipc.open_stream(table_ipc).read_all(), storage_path)


def stage_table(table: pa.Table, storage_path: str) -> StagedPartition:
    """Write an Arrow table as Parquet: a temporary file beside `storage_path` in a local
    store, an object at a unique key beside it on an object store."""
    store = partition_store()
    if store.local:
        return local.stage_table(Path(store.root), table, storage_path)
    return objects.stage_table(store, table, storage_path)


def stage_parquet_file(source: Path, storage_path: str) -> StagedPartition:
    """Stage a Parquet file written elsewhere (by Spark) for `storage_path`: moved beside it in
    a local store, uploaded from `source` (then removed) to an object store."""
    store = partition_store()
    if store.local:
        return local.stage_parquet_file(Path(store.root), source, storage_path)
    return objects.stage_parquet_file(store, source, storage_path)


def publish_partitions(staged: list[StagedPartition]) -> list[WrittenPartition]:
    """Make staged files durable and put them in place; return them in order.

    Local files are fsynced, renamed, then each directory involved is fsynced once, so a batch
    shares the waits for the disk; when this raises, none of the temporary files is left.
    Objects are in place once uploaded: nothing is left to do for them.
    """
    local.publish([item for item in staged if item.temp is not None])
    return [item.written for item in staged]


def discard_staged(item: StagedPartition) -> None:
    """Remove a staged file or uploaded object that will not be published nor committed."""
    if item.temp is not None:
        local.discard(item)
    else:
        objects.discard(partition_store(), item)


def remove_partition_file(storage_path: str) -> None:
    """Delete a partition file (after the commit that stopped referencing it)."""
    if not storage_path:
        return
    store = partition_store()
    if store.local:
        local.remove_file(Path(store.root), storage_path)
    else:
        objects.remove_file(store, storage_path)


def sweep_connector_directory(connector_id: int, keep: set[str]) -> None:
    """Remove temporary files and files no committed partition references (`keep`: their
    storage paths).

    Only call this while no ingest of the connector is running: a running one owns its
    temporary files and its written-but-not-yet-committed files.
    """
    store = partition_store()
    if store.local:
        local.sweep(Path(store.root), connector_id, keep)
    else:
        objects.sweep(store, connector_id, keep)


def connector_directories() -> list[int]:
    """Return the ids of the connectors that have a directory (a prefix) in the store."""
    store = partition_store()
    if store.local:
        return local.connector_ids(Path(store.root))
    return objects.connector_ids(store)


def stored_paths(connector_id: int) -> set[str]:
    """Return the storage paths of every file in a connector's directory (temporaries too)."""
    store = partition_store()
    if not store.local:
        return objects.stored_paths(store, connector_id)
    root = Path(store.root)
    directory = root / str(int(connector_id))
    if not directory.is_dir():
        return set()
    return {path.relative_to(root).as_posix() for path in directory.rglob("*") if path.is_file()}


def open_partition(storage_path: str) -> pa.NativeFile:
    """Open a partition's file for reading (random access), from wherever the store is."""
    store = partition_store()
    if store.local:
        return pafs.LocalFileSystem().open_input_file(str(absolute_path(storage_path)))
    return objects.open_input(store, storage_path)


def read_partition_preview(storage_path: str, limit: int = 100) -> dict[str, Any]:
    """Return the first `limit` rows of a committed partition as JSON-safe columns and rows."""
    with open_partition(storage_path) as source:
        parquet = pq.ParquetFile(source)
        batches = []
        remaining = limit
        for batch in parquet.iter_batches(batch_size=max(min(limit, 10_000), 1)):
            if remaining <= 0:
                break
            batch = batch.slice(0, remaining)
            batches.append(batch)
            remaining -= batch.num_rows
        schema = parquet.schema_arrow
        row_count = parquet.metadata.num_rows
    table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    return {
        "columns": table_columns(schema),
        "rows": json_rows(table),
        "row_count": row_count,
        "truncated": row_count > table.num_rows,
    }
