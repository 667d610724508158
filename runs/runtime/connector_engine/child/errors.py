"""Turn what user code raised into the error shape, pointing into the user's code.

User code is compiled under its pseudo file names (connector_engine.user_code) and its source is
registered with `linecache`, so tracebacks show the user's lines. `user_error` turns any exception
into {"type", "message", "function", "line", "file", "traceback"} where `function` and `line` name
the innermost frame of user code and the traceback lists user frames only (engine and third-party
frames are noise to a connector author). `file` says which of the two sources the line is in.
"""

from __future__ import annotations

import linecache
import traceback
from types import CodeType, TracebackType
from typing import Any

from connector_engine.protocol import make_error
from connector_engine.user_code import USER_FILENAMES, ConnectorError


def register_source(filename: str, source: str) -> None:
    """Make `source` visible to linecache (and so to tracebacks) under `filename`."""
    # mtime None marks the entry as not backed by a file, so checkcache() keeps it.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def compile_user_code(source: str, filename: str) -> CodeType:
    """Compile user code under its pseudo file name and register its lines."""
    register_source(filename, source)
    return compile(source, filename, "exec", dont_inherit=True)


def user_error(exc: BaseException, memory_mb: int | None = None) -> dict[str, Any]:
    """Return the structured error for an exception raised while running user code."""
    if isinstance(exc, ConnectorError):
        return exc.to_dict()
    frames = user_frames(exc.__traceback__)
    function = line = file = None
    if frames:
        innermost, lineno = frames[-1]
        function, line, file = innermost.f_code.co_name, lineno, innermost.f_code.co_filename
    elif isinstance(exc, SyntaxError) and exc.filename in USER_FILENAMES:
        line, file = exc.lineno, exc.filename
    return make_error(
        type(exc).__name__,
        error_message(exc, memory_mb),
        function=function,
        line=line,
        file=file,
        traceback=user_traceback(exc),
    )


def memory_limit_mb(request: Any) -> int | None:
    """Return a request's memory limit for error messages, without trusting its shape."""
    try:
        return int(request.limits.memory_mb)
    except Exception:
        return None


def error_message(exc: BaseException, memory_mb: int | None = None) -> str:
    """Return a message for an exception; explain exits and memory exhaustion."""
    if isinstance(exc, SystemExit):
        return (
            f"The connector called sys.exit({exc.code!r}): "
            "return a value or raise an exception instead"
        )
    if isinstance(exc, MemoryError):
        limit = f"the memory limit of {memory_mb} MB" if memory_mb else "the memory limit"
        return (
            f"The connector ran out of memory ({limit}): read less at once, e.g. yield smaller "
            "chunks or split the data into more partitions"
        )
    try:
        text = str(exc)
    except Exception:  # a user exception's __str__ may itself be broken
        text = ""
    return text or type(exc).__name__


def user_frames(tb: TracebackType | None) -> list[tuple[Any, int]]:
    """Return (frame, line) pairs of user code in a traceback, outermost first."""
    frames = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in USER_FILENAMES:
            frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def user_traceback(exc: BaseException) -> str:
    """Format an exception (and its chain) showing user frames only."""
    try:
        summary = traceback.TracebackException.from_exception(exc, capture_locals=False)
        _keep_user_frames(summary, set())
        return "".join(summary.format())
    except Exception:  # formatting must never hide the original error
        return "".join(traceback.format_exception_only(type(exc), exc))


def _keep_user_frames(summary: traceback.TracebackException, seen: set[int]) -> None:
    """Drop non-user frames from a TracebackException and the exceptions it chains."""
    if id(summary) in seen:
        return
    seen.add(id(summary))
    kept = [frame for frame in summary.stack if frame.filename in USER_FILENAMES]
    summary.stack = traceback.StackSummary.from_list(kept)
    for chained in (summary.__cause__, summary.__context__):
        if chained is not None:
            _keep_user_frames(chained, seen)
