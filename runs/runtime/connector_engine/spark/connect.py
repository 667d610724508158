"""Spark Connect client helpers shared by the sandbox child, the Data Source and the ingest job."""

from __future__ import annotations

import warnings
from typing import Any

# Where Spark's messages start the JVM's stack trace: cut there, it means nothing to a user.
JVM_STACKTRACE_MARKER = "\n\nJVM stacktrace:"


def spark_session_class() -> Any:
    """Import pyspark's Spark Connect SparkSession without its pandas-version notices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql.connect.session import SparkSession
    return SparkSession


def without_jvm_trace(text: str) -> str:
    """Return a Spark message or traceback without the JVM stack trace appended to it."""
    return text.split(JVM_STACKTRACE_MARKER, 1)[0]
