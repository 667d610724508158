"""One log format for the web server (gunicorn and Django), the worker and the commands.

Each line has the time (UTC), the level, the logger, the process id and, while a preview or an
ingest runs, the run's id: `run_logging(run_id)` sets it for the calling thread (and the threads
an ingest starts for its reads take it with them). LOG_FORMAT=json writes one JSON object per
line instead: {"time", "level", "logger", "process", "thread", "run_id", "message"} plus
"exception" when there is one. Plain Python: settings and the gunicorn configuration both build
their logging from `logging_config`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")

_run_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("run_id", default=None)


@contextlib.contextmanager
def run_logging(run_id: int) -> Iterator[None]:
    """Mark what this thread logs inside the block with `run_id`."""
    token = _run_id.set(run_id)
    try:
        yield
    finally:
        _run_id.reset(token)


def set_run_id(run_id: int | None) -> None:
    """Mark everything this thread logs from now on with `run_id` (a pool thread's initializer:
    the pool's threads belong to one run)."""
    _run_id.set(run_id)


def current_run_id() -> int | None:
    """The run this thread is executing, if any."""
    return _run_id.get()


class RunIdFilter(logging.Filter):
    """Give every record a `run_id`: the one it was logged with (extra=), else the thread's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            record.run_id = _run_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`2026-01-31T12:00:00.123Z INFO runs.worker pid=12 run=42 message` (no run=: no run)."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s pid=%(process)d%(run)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        run_id = getattr(record, "run_id", None)
        record.run = f" run={run_id}" if run_id is not None else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (tracebacks included, their newlines escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "thread": record.threadName,
            "run_id": getattr(record, "run_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def logging_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """The logging configuration (dictConfig) of every process: one handler on the root logger,
    to stderr, that gunicorn's own loggers (errors, access) and Django's propagate to."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"run_id": {"()": RunIdFilter}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["run_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # gunicorn gives these handlers of its own; here they write through the root's.
            "gunicorn.error": {"handlers": [], "propagate": True, "level": level},
            "gunicorn.access": {"handlers": [], "propagate": True, "level": "INFO"},
        },
    }
