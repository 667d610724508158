"""A mutable fake source for ingest tests, readable from inside the sandbox.

The sandbox shows connector code only the folders SANDBOX_READABLE_PATHS lists, and gives each
request a private /tmp, so the source lives in SOURCES_ROOT: a manifest.json maps partition
names to {"fingerprint", "rows", and optionally "fail" (raise in the reader), "sleep" (seconds
before returning) and "spawn" (start `sleep <spawn>` first, a child process tests can look
for)}. Rows are derived from the name and fingerprint, so any reader (or test) can recompute
them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from runs import storage
from runs.ingest import services
from runs.models import Partition

SOURCE_CODE = """
import json, subprocess, time
import pandas as pd

SOURCE = SOURCE_PATH


def manifest():
    with open(SOURCE + "/manifest.json") as handle:
        return json.load(handle)


def list_objects(context, metadata):
    entries = manifest()
    if not metadata:
        for folder in sorted({name.split("/")[0] for name in entries if "/" in name}):
            yield {"name": folder, "is_prefix": True}
        for name, entry in entries.items():
            if "/" not in name:
                yield {"name": name, "fingerprint": entry["fingerprint"]}
    else:
        for name, entry in entries.items():
            if name.startswith(metadata["name"] + "/"):
                yield {"name": name, "fingerprint": entry["fingerprint"]}


def read_pandas_dataframe(context, metadata):
    entry = manifest()[metadata["name"]]
    if entry.get("spawn"):
        subprocess.Popen(["sleep", entry["spawn"]])
    if entry.get("sleep"):
        time.sleep(entry["sleep"])
    if entry.get("fail"):
        raise RuntimeError("cannot read " + metadata["name"])
    print("reading", metadata["name"])
    n = entry["rows"]
    return pd.DataFrame({
        "name": [metadata["name"]] * n,
        "fingerprint": [metadata["fingerprint"]] * n,
        "i": list(range(n)),
    })
"""


# Where tests keep source files connector code reads: outside /tmp (each request has its own)
# and listed in SANDBOX_READABLE_PATHS by tests/conftest.py (the sandbox sees nothing else).
SOURCES_ROOT = Path("/var/tmp/cs-test-sources")


class FakeSource:
    """A manifest file the connector lists and reads."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="ingest-source-", dir=SOURCES_ROOT))
        self.directory.chmod(0o755)
        self.entries: dict[str, dict[str, Any]] = {}

    @property
    def code(self) -> str:
        return SOURCE_CODE.replace("SOURCE_PATH", repr(str(self.directory)))

    def set(self, name: str, fingerprint: str, rows: int = 3, **extra: Any) -> None:
        self.entries[name] = {"fingerprint": fingerprint, "rows": rows, **extra}
        self.save()

    def remove(self, name: str) -> None:
        del self.entries[name]
        self.save()

    def save(self) -> None:
        temp = self.directory / "manifest.json.tmp"
        temp.write_text(json.dumps(self.entries))
        temp.chmod(0o644)
        os.replace(temp, self.directory / "manifest.json")

    def expected(self) -> dict[str, str]:
        return {name: entry["fingerprint"] for name, entry in self.entries.items()}

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def ingest(connector, **options):
    """Create an ingest run of `connector` and execute it here; return the finished run."""
    run = services.ingest_create(connector=connector, **options)
    return services.ingest_execute(run_id=run.pk)


def committed(connector) -> dict[str, str]:
    """Return {name: fingerprint} of the committed partitions."""
    return dict(Partition.objects.filter(connector=connector).values_list("name", "fingerprint"))


def assert_partitions_match_source(connector, source: FakeSource) -> None:
    """The committed partitions, their files and their rows equal the source exactly."""
    assert committed(connector) == source.expected()
    referenced = set()
    for partition in Partition.objects.filter(connector=connector):
        entry = source.entries[partition.name]
        table = pq.read_table(storage.absolute_path(partition.storage_path))
        assert table.num_rows == entry["rows"] == partition.row_count
        assert set(table.column("name").to_pylist()) <= {partition.name}
        assert table.column("i").to_pylist() == list(range(entry["rows"]))
        assert set(table.column("fingerprint").to_pylist()) <= {entry["fingerprint"]}
        referenced.add(storage.absolute_path(partition.storage_path))
    on_disk = set()
    directory = storage.connector_directory(connector.pk)
    if directory.exists():
        on_disk = {path.resolve() for path in directory.rglob("*") if path.is_file()}
    assert on_disk == referenced, "orphan or temporary files left behind"


def cancel_while_running(run, ready: Callable[[], bool], *, within_s: float) -> Any:
    """Execute `run` in a thread; once `ready()` holds, cancel it and require that it ends
    within `within_s` seconds. Return the finished run."""
    from tests.processes import wait_for

    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(run=services.ingest_execute(run_id=run.pk))
    )
    thread.start()
    try:
        assert wait_for(ready, timeout=60), "the run never got ready to be cancelled"
        started = time.monotonic()
        assert services.ingest_cancel(run=run)
        thread.join(within_s * 3)
        assert not thread.is_alive()
        assert time.monotonic() - started < within_s
    finally:
        services.ingest_cancel(run=run)
        thread.join(60)
    return outcome["run"]
