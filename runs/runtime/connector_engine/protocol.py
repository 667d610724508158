"""The values that cross the sandbox boundary: what to run, within which limits, and what came back.

Plain dataclasses, JSON-friendly, no Django import: the trusted side (Django, the CLI, the ingest
worker) builds a SandboxRequest and gets a SandboxResult from `runs.runtime.run_action`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["context", "list", "read", "schema"]
Interface = Literal["pandas", "spark", "bytes"]
Parser = Literal["csv", "jsonl", "parquet", "lines"]

ACTIONS: tuple[str, ...] = ("context", "list", "read", "schema")
INTERFACES: tuple[str, ...] = ("pandas", "spark", "bytes")
PARSERS: tuple[str, ...] = ("csv", "jsonl", "parquet", "lines")

# The reader function each interface calls, and the parameters the engine passes by keyword.
READERS: dict[str, str] = {
    "pandas": "read_pandas_dataframe",
    "spark": "read_spark_dataframe",
    "bytes": "read_bytes",
}
READER_PARAMETERS: dict[str, tuple[str, ...]] = {
    "read_pandas_dataframe": ("context", "metadata"),
    "read_spark_dataframe": ("spark", "context", "metadata"),
    "read_bytes": ("context", "metadata"),
}
# Parameter names infer_schema may ask for; bound by name.
INFER_SCHEMA_PARAMETERS: tuple[str, ...] = ("spark", "context", "metadata", "credentials")

# How the connection's shared library code is importable from connector code.
LIBRARY_MODULE = "library"


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed request."""

    timeout_s: float = 30.0  # wall clock; the whole process group is killed after it
    cpu_s: int = 60  # RLIMIT_CPU
    memory_mb: int = 2048  # RLIMIT_AS headroom for user code
    max_processes: int = 64  # RLIMIT_NPROC
    max_file_mb: int = 256  # RLIMIT_FSIZE
    max_output_bytes: int = 1_000_000  # captured stdout+stderr; the rest is cut with a marker
    row_limit: int = 100  # rows returned by a read preview
    max_objects: int = 10_000  # objects listed before the listing stops (truncated)
    max_depth: int = 32  # prefix nesting depth before the listing stops (truncated)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Limits:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class SandboxRequest:
    """One action to run on one connector's code.

    `object` is the leaf to read (read/schema; the first leaf when None) or, for `list`, the one
    prefix to expand a single level (None lists the whole tree from the root).
    `full_table` asks a `read` for every row as Arrow (ingest) instead of a preview.
    `objects` (with action "read" and full_table) is a batch of leaves read one after the other
    in the same child: the result is {"batch": [one single-read reply per leaf]}, each item with
    its own ok/result/error and `table_bytes`, the length of its Arrow IPC stream; the streams
    are concatenated in SandboxResult.table in the same order (see `split_batch_tables`).
    `spark_remote` is the Spark Connect URL (`sc://host:port/;token=...`) the child connects to
    for the spark interface and infer_schema(spark=...); None when the request needs no Spark.
    Its token is masked like the credentials.
    """

    action: str
    code: str
    library_code: str = ""
    interface: str = "pandas"
    parser: str | None = None
    credentials: str = ""
    object: dict[str, Any] | None = None
    limits: Limits = field(default_factory=Limits)
    full_table: bool = False
    objects: list[dict[str, Any]] | None = None
    spark_remote: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["limits"] = self.limits.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxRequest:
        data = dict(data)
        data["limits"] = Limits.from_dict(data.get("limits"))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class SandboxResult:
    """What came back from the sandbox, already masked of secrets.

    `error`, when present: {"type", "message", "function", "line", "traceback"} where function
    and line point into the user's code (or are None when the failure was not in user code).
    `table` is the Arrow IPC stream of the rows read (preview rows, or all rows for full_table).
    """

    ok: bool
    action: str
    result: dict[str, Any] | None = None
    logs: str = ""
    error: dict[str, Any] | None = None
    duration_ms: int = 0
    isolation: str = ""
    table: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The CLI's and the Run row's JSON shape (no Arrow bytes)."""
        return {
            "ok": self.ok,
            "action": self.action,
            "result": self.result,
            "logs": self.logs,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "isolation": self.isolation,
        }

    def batch(self) -> list[tuple[dict[str, Any], bytes]] | None:
        """Return a batch read's (item, Arrow IPC stream) pairs; None when it has no batch."""
        return split_batch(self.result, self.table or b"")


def split_batch(result: Any, data: bytes) -> list[tuple[dict[str, Any], bytes]] | None:
    """Split a batch reply's concatenated tables by each item's `table_bytes`.

    Returns None when `result` is not a batch or the lengths do not add up to `data`.
    """
    items = result.get("batch") if isinstance(result, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return None
    pairs, offset = [], 0
    for item in items:
        size = item.get("table_bytes") or 0
        if not isinstance(size, int) or size < 0 or offset + size > len(data):
            return None
        pairs.append((item, data[offset : offset + size]))
        offset += size
    return pairs if offset == len(data) else None
