"""What crosses the engine's boundary: requests, results, limits, vocabularies and the error shape.

Plain dataclasses and enums, JSON-friendly, no Django import. The trusted side (Django, the CLI,
the ingest worker) builds a SandboxRequest and gets a SandboxResult from
`connector_engine.sandbox`. Django's choices are derived from the enums here; every error the
engine reports, wherever it comes from, has the shape `make_error` returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict


class Vocabulary(StrEnum):
    """A vocabulary of the engine: each member is its string, with a label for people."""

    label: str

    def __new__(cls, value: str, label: str) -> Vocabulary:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class Action(Vocabulary):
    """What a sandbox request does with the connector."""

    CONTEXT = "context", "Preview context"
    LIST = "list", "List objects"
    READ = "read", "Preview partition"
    SCHEMA = "schema", "Infer schema"
    TEST = "test", "Run tests"  # the connector's test_* functions (child.connector_tests)


class Interface(Vocabulary):
    """Which reader a connector defines: how its partitions become rows."""

    PANDAS = "pandas", "pandas DataFrame"
    SPARK = "spark", "Spark DataFrame"
    BYTES = "bytes", "bytes (parsed)"

    @property
    def reader(self) -> str:
        """The reader function this interface calls."""
        return READERS[self]


class Parser(Vocabulary):
    """How the bytes interface turns chunks into rows."""

    CSV = "csv", "CSV"
    JSONL = "jsonl", "JSON lines"
    PARQUET = "parquet", "Parquet"
    LINES = "lines", "raw lines"


class IngestEngine(Vocabulary):
    """Where an ingest reads its partitions: in sandbox batches on this machine, or as one Spark
    job (the connector as a Python Data Source, Parquet written by Spark)."""

    SANDBOX = "sandbox", "sandbox"
    SPARK = "spark", "Spark (scale out)"


ACTIONS: tuple[str, ...] = tuple(Action)
INTERFACES: tuple[str, ...] = tuple(Interface)
PARSERS: tuple[str, ...] = tuple(Parser)

# The reader function each interface calls, and the parameters the engine passes by keyword.
READERS: dict[str, str] = {
    Interface.PANDAS: "read_pandas_dataframe",
    Interface.SPARK: "read_spark_dataframe",
    Interface.BYTES: "read_bytes",
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


# ---------------------------------------------------------------- errors


class ErrorType(StrEnum):
    """The error types the engine itself reports (user exceptions keep their class name)."""

    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"
    CPU_LIMIT = "CpuLimit"
    MEMORY_LIMIT = "MemoryLimit"
    KILLED_BY_SIGNAL = "KilledBySignal"
    PROCESS_EXIT = "ProcessExit"
    OUTPUT_TOO_LARGE = "OutputTooLarge"
    SANDBOX_ERROR = "SandboxError"
    CONTRACT_ERROR = "ContractError"
    INVALID_REQUEST = "InvalidRequest"
    CONFIGURATION_ERROR = "ConfigurationError"
    NO_OBJECTS = "NoObjects"
    NOT_AVAILABLE = "NotAvailable"
    ENVIRONMENT_ERROR = "EnvironmentError"
    ENVIRONMENT_BUILDING = "EnvironmentBuilding"
    SPARK_UNAVAILABLE = "SparkUnavailable"
    SPARK_BUSY = "SparkBusy"
    TOO_MANY_RUNS = "TooManyRuns"
    SPARK_SESSION_CLOSED = "SparkSessionClosed"
    SPARK_JOB_FAILED = "SparkJobFailed"
    SCHEMA_UNAVAILABLE = "SchemaUnavailable"
    SCHEMA_NOT_SUPPORTED = "SchemaNotSupported"
    SCHEMA_MISMATCH = "SchemaMismatch"
    PARSE_ERROR = "ParseError"
    DATA_ERROR = "DataError"
    VALIDATION_ERROR = "ValidationError"
    LISTING_TRUNCATED = "ListingTruncated"
    DELETION_GUARD = "DeletionGuard"
    PARTITIONS_FAILED = "PartitionsFailed"
    STORAGE_ERROR = "StorageError"
    INTERRUPTED = "Interrupted"
    INTERNAL_ERROR = "InternalError"
    TESTS_FAILED = "TestsFailed"


# The connector's process died or was stopped by a limit: what it was doing is lost, but
# another attempt (alone, with the full limits) may succeed.
PROCESS_FAILURES = frozenset(
    {
        ErrorType.TIMEOUT,
        ErrorType.CPU_LIMIT,
        ErrorType.MEMORY_LIMIT,
        ErrorType.KILLED_BY_SIGNAL,
        ErrorType.PROCESS_EXIT,
        ErrorType.OUTPUT_TOO_LARGE,
        ErrorType.SANDBOX_ERROR,
    }
)
# The sandbox killed the connector's process: a Spark client it held may have left a query
# running on the server.
CHILD_KILLED = (PROCESS_FAILURES - {ErrorType.OUTPUT_TOO_LARGE}) | {ErrorType.CANCELLED}


class ErrorDict(TypedDict):
    """The one error shape: what failed, and where in the user's code when it was there."""

    type: str
    message: str
    function: str | None  # the user function the error is located in
    line: int | None  # its line in `file`
    file: str | None  # "<connector>" or "<library>"
    traceback: str  # user frames only; or a log (pip's) that explains the error


def make_error(
    type_: str,
    message: str,
    *,
    function: str | None = None,
    line: int | None = None,
    file: str | None = None,
    traceback: str | None = "",
) -> dict[str, Any]:
    """Return an error in the one shape every part of the engine reports."""
    return {
        "type": str(type_),
        "message": message,
        "function": function,
        "line": line,
        "file": file,
        "traceback": traceback or "",
    }


def error_type(error: dict[str, Any] | None) -> str:
    """Return an error's type, "" for no error."""
    return str((error or {}).get("type") or "")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed request."""

    timeout_s: float = 30.0  # wall clock; the whole process group is killed after it
    cpu_s: int = 60  # RLIMIT_CPU
    memory_mb: int = 2048  # RLIMIT_AS headroom for user code
    tmp_mb: int = 256  # the request's own /tmp, a tmpfs gone when the request ends
    max_processes: int = 64  # RLIMIT_NPROC
    max_file_mb: int = 256  # RLIMIT_FSIZE
    max_output_bytes: int = 1_000_000  # captured stdout+stderr; the rest is cut with a marker
    row_limit: int = 100  # rows returned by a read preview
    profile_row_budget: int = 100_000  # rows a read preview's column profile covers, at most
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
    are concatenated in SandboxResult.table in the same order (see `split_batch`).
    `spark_remote` is the Spark Connect URL (`sc://host:port/;token=...`) the child connects to
    for the spark interface and infer_schema(spark=...); None when the request needs no Spark.
    Its token is masked like the credentials' secrets (`secret_fields` names them; None takes
    each field's default, connector_engine.credentials). `mask_data` False leaves what an ingest
    lands as the source had it (the rows, the listed names and metadata): only logs, errors and
    listing problems are masked then. `network` False runs the connector in a network
    namespace of its own (no interface but a loopback that is down): no network at all. `tenant`
    names whose code it is (a connection): a Spark session one tenant's code used is never
    leased to another's.
    """

    action: str
    code: str
    library_code: str = ""
    interface: str = "pandas"
    parser: str | None = None
    parser_options: dict[str, Any] = field(default_factory=dict)
    credentials: str = ""
    object: dict[str, Any] | None = None
    limits: Limits = field(default_factory=Limits)
    full_table: bool = False
    objects: list[dict[str, Any]] | None = None
    spark_remote: str | None = None
    network: bool = True  # False: the connector's process gets no network at all
    tenant: str = ""  # whose code it is (a connection)
    secret_fields: list[str] | None = None  # the credentials' secret fields (None: by name)
    mask_data: bool = True  # False for an ingest: what it lands is never masked

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

    `error`, when present, has the shape of `make_error` (type, message, function, line, file,
    traceback): function, line and file point into the user's code, or are None when the failure
    was not in user code.
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
    # Where the time went (ms): the supervisor's phases, the connector process's and the round
    # trip as the client saw it. Not part of to_json: it describes this run of the engine.
    timings: dict[str, float] = field(default_factory=dict, repr=False)
    imported: list[str] = field(default_factory=list, repr=False)  # modules the run imported

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
