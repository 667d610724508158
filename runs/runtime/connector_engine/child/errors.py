"""Structured errors that point into the user's code.

User code is compiled under the pseudo file names "<connector>" and "<library>" and its source is
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

CONNECTOR_FILENAME = "<connector>"
LIBRARY_FILENAME = "<library>"
USER_FILENAMES = frozenset({CONNECTOR_FILENAME, LIBRARY_FILENAME})


class ConnectorError(Exception):
    """An error the engine reports about user code, e.g. a reader returning the wrong type."""

    def __init__(
        self,
        type_: str,
        message: str,
        *,
        function: str | None = None,
        line: int | None = None,
        file: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.function = function
        self.line = line
        self.file = file
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        """Return the structured error."""
        error = make_error(
            self.type, self.message, function=self.function, line=self.line, file=self.file
        )
        error.update(self.extra)
        return error

    @classmethod
    def about(cls, type_: str, message: str, func: Any) -> ConnectorError:
        """Build an error located at the definition of a user function."""
        function, line, file = function_location(func)
        return cls(type_, message, function=function, line=line, file=file)


def register_source(filename: str, source: str) -> None:
    """Make `source` visible to linecache (and so to tracebacks) under `filename`."""
    # mtime None marks the entry as not backed by a file, so checkcache() keeps it.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def compile_user_code(source: str, filename: str) -> CodeType:
    """Compile user code under its pseudo file name and register its lines."""
    register_source(filename, source)
    return compile(source, filename, "exec", dont_inherit=True)


def function_location(func: Any) -> tuple[str | None, int | None, str | None]:
    """Return (name, first line, file) of a user function, or Nones for other callables."""
    code = getattr(func, "__code__", None)
    if code is None or code.co_filename not in USER_FILENAMES:
        return getattr(func, "__name__", None), None, None
    return code.co_name, code.co_firstlineno, code.co_filename


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
