"""Turn what a connector's process left behind into the sandbox's reply, masked.

`interpret` reads the capture: the result envelope the process wrote, or why there is none (the
client cancelled, the result was too large, the wall-clock timeout, an exit, a signal, a limit).
A MemoryError the user code raised becomes "MemoryLimit" at the user's line. `mask_reply` and
`finish_table` then mask secrets in the reply and in every Arrow table: tables are always decoded,
validated and written again, so the trusted side only ever decodes IPC bytes pyarrow produced in
the supervisor, never the connector's own bytes.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from connector_engine.masking import Masker
from connector_engine.output import CappedOutput, human_size
from connector_engine.protocol import ErrorType, Limits, SandboxRequest, make_error, split_batch
from connector_engine.sandbox.shape import module_names
from connector_engine.system.framing import FrameError, decode_message

MAX_RESULT_BYTES = 256 * 1024 * 1024  # a result (envelope + Arrow table) larger than this fails
MB = 1024 * 1024
# The largest reply a supervisor sends: the result plus its preview rows (JSON) and margin. The
# supervisor checks it where the reply is built; a larger one fails its request alone.
MAX_REPLY_BYTES = 2 * MAX_RESULT_BYTES + 64 * MB


@dataclass
class Capture:
    """What the supervisor collected from the connector's process."""

    logs: CappedOutput  # stdout and stderr, capped at limits.max_output_bytes
    result: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    cancelled: bool = False  # the client hung up: it no longer wants the result
    too_large: bool = False
    status_report: bytearray = field(default_factory=bytearray)
    status: int = 0
    maxrss_kb: int = 0
    cpu_s: float = 0.0


def interpret(request: SandboxRequest, capture: Capture) -> tuple[dict[str, Any], bytes]:
    """Turn what the process left behind into a reply (unmasked) and its Arrow table bytes."""
    limits = request.limits
    reply: dict[str, Any] = {"ok": False, "result": None, "error": None}
    reply["logs"] = capture.logs.text()
    table = b""
    if capture.cancelled:
        reply["error"] = cancelled_error()
    elif capture.too_large:
        reply["error"] = too_large_error()
    elif capture.timed_out:
        reply["error"] = timeout_error(limits)
    elif capture.result:
        try:
            envelope, table = decode_message(capture.result)
            reply.update(ok=bool(envelope.get("ok")), result=envelope.get("result"))
            reply["timings"] = child_timings(envelope.get("timings"))
            reply["imported"] = module_names(envelope.get("imported"))
            if envelope.get("warm_up") in ("preloaded", "warmed up"):
                reply["warm_up"] = envelope["warm_up"]
            reply["error"] = envelope.get("error")
        except (FrameError, ValueError):
            reply["error"] = make_error(
                ErrorType.SANDBOX_ERROR, "The connector's process returned an unreadable result."
            )
        for holder in (reply, *batch_items(reply)):
            error = holder.get("error")
            if isinstance(error, dict) and error.get("type") == MemoryError.__name__:
                holder["error"] = memory_error_from_user_code(error, limits)
    else:
        reply["error"] = exit_error(capture, limits)
    return reply, table


def child_timings(timings: Any) -> dict[str, float]:
    """The connector process's phase timings (ms), numbers only: the process runs user code."""
    if not isinstance(timings, dict):
        return {}
    return {
        key: float(value)
        for key, value in timings.items()
        if key in CHILD_TIMINGS and isinstance(value, int | float)
    }


CHILD_TIMINGS = ("request_ms", "execute_ms", "arrow_ms")


def reply_too_large_error(size: int) -> dict[str, Any]:
    """Return the error for a reply above MAX_REPLY_BYTES (e.g. preview rows that grew in JSON)."""
    return make_error(
        ErrorType.OUTPUT_TOO_LARGE,
        f"The result came to {human_size(size)} with its preview rows, more than the "
        f"{human_size(MAX_REPLY_BYTES)} a result may take, and was not returned; read less per "
        "partition (smaller cells, fewer columns) or split the data into more partitions.",
    )


def too_large_error() -> dict[str, Any]:
    """Return the error for a result above MAX_RESULT_BYTES."""
    return make_error(
        ErrorType.OUTPUT_TOO_LARGE,
        f"The result is larger than {MAX_RESULT_BYTES // MB} MB and was not returned; "
        "read fewer rows per partition or split the data into more partitions.",
    )


def cancelled_error() -> dict[str, Any]:
    """Return the error for a run its client cancelled."""
    return make_error(ErrorType.CANCELLED, "The run was cancelled; all its processes were killed.")


def timeout_error(limits: Limits) -> dict[str, Any]:
    """Return the error for a run that hit the wall-clock timeout."""
    return make_error(
        ErrorType.TIMEOUT,
        f"The connector ran longer than {limits.timeout_s:g} s and was stopped; "
        "all its processes were killed.",
    )


def memory_error_from_user_code(error: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Keep the user's line but report the type MemoryLimit and mention the limit."""
    message = str(error.get("message") or "")
    if "memory limit" not in message:
        prefix = f"The connector ran out of memory at the memory limit of {limits.memory_mb} MB"
        message = prefix + (f" ({message})." if message else ".")
    return {**error, "type": str(ErrorType.MEMORY_LIMIT), "message": message}


def exit_error(capture: Capture, limits: Limits) -> dict[str, Any]:
    """Explain why the process ended without writing a result."""
    status = capture.status
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return make_error(
            ErrorType.PROCESS_EXIT,
            f"The connector ended the process (exit code {code}) before returning a result, "
            "e.g. with os._exit(); return from the function or raise an exception instead.",
        )
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and capture.cpu_s >= limits.cpu_s):
        return make_error(
            ErrorType.CPU_LIMIT,
            f"The connector used more than {limits.cpu_s} s of CPU time and was stopped.",
        )
    if signum in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) and looks_like_oom(
        capture, limits
    ):
        return make_error(
            ErrorType.MEMORY_LIMIT,
            f"The connector was killed at the memory limit of {limits.memory_mb} MB.",
        )
    message = f"The connector's process was {signal_phrase(signum)}."
    return make_error(ErrorType.KILLED_BY_SIGNAL, message)


def looks_like_oom(capture: Capture, limits: Limits) -> bool:
    """Guess whether a crash came from running out of memory."""
    rss = capture.maxrss_kb * 1024
    tail = bytes(capture.logs.data[-4096:])
    markers = (b"MemoryError", b"bad_alloc", b"Cannot allocate memory", b"out of memory")
    return rss >= 0.8 * limits.memory_mb * MB or any(marker in tail for marker in markers)


def signal_phrase(signum: int) -> str:
    """Return e.g. 'killed by signal SIGSEGV (segmentation fault)'."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    description = signal.strsignal(signum) or ""
    description = description.split(":")[0].lower()
    return f"killed by signal {name}" + (f" ({description})" if description else "")


def mask_reply(reply: dict[str, Any], masker: Masker, *, data: bool = True) -> dict[str, Any]:
    """Mask secrets in the logs, the error and the result.

    With `data` False (an ingest), the result keeps what the source had (listed names and
    metadata, row counts); only the logs and errors (a batch's items' too) and listing problems
    are masked.
    """
    if data:
        return {key: masker.value(value) for key, value in reply.items()}
    masked = {
        key: value if key == "result" else masker.value(value) for key, value in reply.items()
    }
    result = masked.get("result")
    if isinstance(result, dict) and "problems" in result:
        masked["result"] = {**result, "problems": masker.value(result["problems"])}
    for item in batch_items(masked):
        for key in ("logs", "error"):
            if key in item:
                item[key] = masker.value(item[key])
    return masked


def batch_items(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the items of a batch read's reply (none for any other reply)."""
    result = reply.get("result")
    items = result.get("batch") if isinstance(result, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def finish_table(
    request: SandboxRequest, reply: dict[str, Any], table_bytes: bytes, masker: Masker
) -> bytes:
    """Mask the Arrow table, fill preview rows, and return the masked IPC stream.

    The table is decoded, validated and written again, secrets or not (see the module docstring).
    """
    if request.objects is not None:
        return finish_batch_tables(reply, table_bytes, masker)
    if not table_bytes:
        return b""
    try:
        table = checked_table(table_bytes, masker)
    except Exception as exc:
        error = make_error(ErrorType.SANDBOX_ERROR, f"Unreadable table: {exc}")
        reply.update(ok=False, error=error)
        return b""
    if isinstance(reply.get("result"), dict) and not request.full_table:
        from connector_engine.tabular import json_rows

        reply["result"]["rows"] = masker.value(json_rows(table))
    return table_to_ipc(table)


def finish_batch_tables(reply: dict[str, Any], table_bytes: bytes, masker: Masker) -> bytes:
    """Mask each table of a batch read and return the masked streams, lengths updated."""
    result = reply.get("result")
    if not table_bytes and not (isinstance(result, dict) and "batch" in result):
        return b""  # the batch failed as a whole (timeout, crash, contract error...)
    pairs = split_batch(result, table_bytes)
    if pairs is None:
        reply.update(
            ok=False,
            result=None,
            error=make_error(ErrorType.SANDBOX_ERROR, "The batch read returned unreadable tables."),
        )
        return b""
    streams = []
    for item, data in pairs:
        stream = b""
        if data:
            try:
                stream = table_to_ipc(checked_table(data, masker))
            except Exception as exc:
                error = make_error(ErrorType.SANDBOX_ERROR, f"Unreadable table: {exc}")
                item.update(ok=False, error=error)
        item["table_bytes"] = len(stream)
        streams.append(stream)
    return b"".join(streams)


def checked_table(table_bytes: bytes, masker: Masker) -> Any:
    """Decode and fully validate an IPC stream from the connector; return it masked."""
    import pyarrow as pa

    table = pa.ipc.open_stream(table_bytes).read_all()
    table.validate(full=True)
    return masker.table(table)


def table_to_ipc(table: Any) -> bytes:
    """Serialize an Arrow table as an IPC stream (empty bytes for no table)."""
    if table is None:
        return b""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def tables_to_ipc(tables: list[Any]) -> tuple[bytes, list[int]]:
    """Serialize a batch's tables as consecutive IPC streams; return them and their lengths."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    sizes = []
    for table in tables:
        start = sink.tell()
        if table is not None:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        sizes.append(sink.tell() - start)
    return sink.getvalue().to_pybytes(), sizes
