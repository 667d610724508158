"""The child's Spark Connect client: connect, reset a pooled session, release, report errors.

- `spark` is a Spark Connect session to request.spark_remote, created on first use (so pyspark is
  imported only by requests that need it). Without spark_remote it is "NotAvailable".
- Pooled sessions (a spark_remote with `session_id=`, see connector_engine.spark.sessions) are
  shared with earlier runs: before user code gets one, `reset_pooled_session` drops temporary
  views (local and global) and temporary functions, clears the cache and resets the runtime
  configuration (SQL `RESET`). Not reset: the current catalog and database, session variables,
  added artifacts and persistent tables (the warehouse is shared by design). A pooled session is
  never released at the end (that would close its id); a session the server says is closed or
  expired fails with "SparkSessionClosed", which the caller answers by rotating the slot's id and
  retrying once.
- Spark's own errors keep their class name as the type, lose the JVM stack trace, and point at the
  user's line (or at the function's def when Spark failed while executing the plan).
- A killed child does not stop a query the server already runs (the caller interrupts a pooled
  session after a kill).

The Spark package (the data source, the ingest job) uses this client too; it imports nothing from
connector_engine.spark, so that dependency points one way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from connector_engine.child.errors import error_message, user_frames, user_traceback
from connector_engine.protocol import ErrorType
from connector_engine.user_code import ConnectorError, function_location

# Where Spark's messages start the JVM's stack trace: cut there, it means nothing to a user.
JVM_STACKTRACE_MARKER = "\n\nJVM stacktrace:"
SPARK_NOT_AVAILABLE = (
    "Spark is not available to this request: no Spark Connect server was given "
    "(spark_remote is empty)"
)
SPARK_SESSION_GONE = "INVALID_HANDLE.SESSION_"  # SESSION_CLOSED, SESSION_NOT_FOUND, ...
SPARK_SESSION_CLOSED = (
    "The Spark session this request leased was closed or expired on the server; "
    "a retry gets a new one"
)


def spark_session_class() -> Any:
    """Import pyspark's Spark Connect SparkSession without its pandas-version notices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql.connect.session import SparkSession
    return SparkSession


def session_id_of(remote: str | None) -> str | None:
    """Return the session_id parameter of a Spark Connect URL (a pooled session), else None."""
    for param in (remote or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name == "session_id" and value:
            return value
    return None


def without_jvm_trace(text: str) -> str:
    """Return a Spark message or traceback without the JVM stack trace appended to it."""
    return text.split(JVM_STACKTRACE_MARKER, 1)[0]


def connect_spark(remote: str | None) -> Any:
    """Return a Spark Connect session to `remote` (reset when pooled); NotAvailable without."""
    if not remote:
        raise ConnectorError(ErrorType.NOT_AVAILABLE, SPARK_NOT_AVAILABLE)
    session = spark_session_class().builder.remote(remote).create()
    if session_id_of(remote) is not None:
        try:
            reset_pooled_session(session)
        except Exception as exc:
            if SPARK_SESSION_GONE in str(exc):
                raise ConnectorError(ErrorType.SPARK_SESSION_CLOSED, SPARK_SESSION_CLOSED) from None
            raise
    return session


def reset_pooled_session(spark: Any) -> None:
    """Undo what an earlier run could have left in a shared session (see the module docstring).

    The four requests are independent: they run at once, so the reset costs one round trip.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        views = pool.submit(lambda: spark.sql("SHOW VIEWS IN global_temp").collect())
        functions = pool.submit(lambda: spark.sql("SHOW USER FUNCTIONS").collect())
        cleared = pool.submit(spark.catalog.clearCache)
        reset = pool.submit(lambda: spark.sql("RESET"))
        for future in (views, functions, cleared, reset):
            future.result()
    for view in views.result():
        if view["namespace"]:
            spark.catalog.dropGlobalTempView(view["viewName"])
        else:
            spark.catalog.dropTempView(view["viewName"])
    for function in functions.result():
        name = function["function"]
        if "." not in name:  # qualified names are persistent functions, not this session's
            spark.sql(f"DROP TEMPORARY FUNCTION IF EXISTS `{name.replace('`', '``')}`")


def release_spark(session: Any, remote: str | None) -> None:
    """Release a Spark session so the server does not keep it; pooled sessions are kept."""
    # The result is already computed; a failed release only costs server memory.
    with suppress(Exception):
        if session_id_of(remote) is None:
            session.stop()
        else:
            session.client.close()  # closes the channel only: the session stays for reuse


def spark_error(exc: BaseException, func: Callable[..., Any]) -> BaseException:
    """Turn a pyspark error into a ConnectorError at the user's line; return others as they are."""
    from pyspark.errors import PySparkException

    if not isinstance(exc, PySparkException):
        return exc
    frames = user_frames(exc.__traceback__)
    if frames:
        frame, line = frames[-1]
        function, file = frame.f_code.co_name, frame.f_code.co_filename
    else:
        function, line, file = function_location(func)
    message = without_jvm_trace(error_message(exc)).strip()
    return ConnectorError(
        type(exc).__name__,
        message or type(exc).__name__,
        function=function,
        line=line,
        file=file,
        extra={"traceback": without_jvm_trace(user_traceback(exc))},
    )
