"""Load a connection's library and a connector's code as modules, and build the context.

The library is executed first as the module `library` (importable from connector code); the
connector module then starts with the library's public names (what `from library import *`
gives) and is executed as `connector`. Both are compiled under their pseudo file names so errors
point into the user's code. `user_modules()` puts back the sys.modules entries they replace, for
callers that run the engine in their own process (Spark's Python workers, tests).

`warm_up()`, when the connector defines it, is called once per process right after the module
is executed, with no arguments and no credentials: what it builds at module level (a boto3
session with its service model loaded, a parsed catalogue) is there for `context()` and the
reader. A connection's warm sandbox worker runs it ahead, before the request comes (`preload`):
a request with exactly that code and library then finds the module executed and warmed up, and
the output both wrote is replayed into the run's output.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import signal
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connector_engine.child.errors import compile_user_code
from connector_engine.child.spark_client import connect_spark, release_spark
from connector_engine.protocol import LIBRARY_MODULE, ErrorType, SandboxRequest
from connector_engine.user_code import CONNECTOR_FILENAME, LIBRARY_FILENAME, ConnectorError
from connector_engine.values import describe

CONNECTOR_MODULE = "connector"
WARM_UP = "warm_up"
MAX_REPLAYED_CHARS = 1 << 20  # output of a preload kept for the run, per stream


@dataclass
class Preloaded:
    """The connector and library modules a process executed and warmed up before its request,
    and what they wrote meanwhile."""

    code: str
    library_code: str
    library: types.ModuleType
    module: types.ModuleType
    stdout: str
    stderr: str


_preloaded: Preloaded | None = None
_defines_warm_up = False  # whether the last connector loaded in this process defines warm_up
_used_preload = False  # whether it was the preloaded one


@dataclass
class LoadedConnector:
    """A connector's executed module, the request it serves and the context its functions get."""

    request: SandboxRequest
    namespace: dict[str, Any]
    context: Any = None
    spark_session: Any = None

    def spark(self) -> Any:
        """Return the Spark Connect session, connecting on first use."""
        if self.spark_session is None:
            self.spark_session = connect_spark(self.request.spark_remote)
        return self.spark_session

    def release_spark(self) -> None:
        """Release the Spark session if one was opened (a pooled one stays on the server)."""
        session, self.spark_session = self.spark_session, None
        if session is not None:
            release_spark(session, self.request.spark_remote)

    def function(self, name: str) -> Callable[..., Any] | None:
        """Return a module-level callable, None when absent; a non-callable is an error."""
        value = self.namespace.get(name)
        if value is None:
            return None
        if not callable(value):
            raise ConnectorError(
                ErrorType.CONTRACT_ERROR, f"{name} must be a function, but it is {describe(value)}"
            )
        return value

    def required(self, name: str) -> Callable[..., Any]:
        """Return a contract function that must exist."""
        func = self.function(name)
        if func is None:
            raise ConnectorError(ErrorType.CONTRACT_ERROR, f"The connector does not define {name}")
        return func


@contextmanager
def user_modules() -> Iterator[None]:
    """Restore the sys.modules entries the connector and library replace."""
    saved = {name: sys.modules.get(name) for name in (LIBRARY_MODULE, CONNECTOR_MODULE)}
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def load_connector(request: SandboxRequest) -> LoadedConnector:
    """Load the library as `library`, then execute the connector with its public names and
    call its warm_up(); or take what this process preloaded for exactly this code."""
    global _preloaded, _defines_warm_up, _used_preload
    preloaded, _preloaded = _preloaded, None  # used once
    library_code = request.library_code or ""
    if preloaded and (preloaded.code, preloaded.library_code) == (request.code, library_code):
        sys.modules[LIBRARY_MODULE] = preloaded.library
        sys.modules[CONNECTOR_MODULE] = preloaded.module
        sys.stdout.write(preloaded.stdout)
        sys.stderr.write(preloaded.stderr)
        _defines_warm_up = _used_preload = True
        return LoadedConnector(request, preloaded.module.__dict__)
    _, module = _execute_modules(request.code, library_code)
    connector = LoadedConnector(request, module.__dict__)
    warm_up = connector.function(WARM_UP)
    _defines_warm_up, _used_preload = warm_up is not None, False
    if warm_up is not None:
        warm_up()
    return connector


def _execute_modules(code: str, library_code: str) -> tuple[types.ModuleType, types.ModuleType]:
    """Execute the library as `library`, then the connector with its public names."""
    library = _new_module(LIBRARY_MODULE, LIBRARY_FILENAME)
    sys.modules[LIBRARY_MODULE] = library
    exec(compile_user_code(library_code, LIBRARY_FILENAME), library.__dict__)
    module = _new_module(CONNECTOR_MODULE, CONNECTOR_FILENAME)
    module.__dict__.update(public_names(library))
    sys.modules[CONNECTOR_MODULE] = module
    exec(compile_user_code(code, CONNECTOR_FILENAME), module.__dict__)
    return library, module


def warm_up_state() -> str:
    """Whether the connector this process loaded last defines warm_up (worth preloading), and
    whether this process had preloaded it: "preloaded", "warmed up" or ""."""
    if not _defines_warm_up:
        return ""
    return "preloaded" if _used_preload else "warmed up"


class PreloadTimeout(BaseException):
    """A preload ran longer than it may; what it built is dropped."""


def preload(code: str, library_code: str, timeout_s: float) -> bool:
    """Execute the connector (and library) and call its warm_up() ahead of a request, keeping
    the modules for a request with exactly this code; output is kept to be replayed. Anything
    that fails (or takes more than `timeout_s`) leaves nothing: the request loads it itself and
    reports the error. Return whether the preload is kept."""
    global _preloaded
    stdout, stderr = io.StringIO(), io.StringIO()

    def expire(signum: int, frame: Any) -> None:
        raise PreloadTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        with user_modules(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            try:
                library, module = _execute_modules(code, library_code)
                warm_up = module.__dict__.get(WARM_UP)
                if not callable(warm_up):
                    return False
                warm_up()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException:
        return False
    finally:
        signal.signal(signal.SIGALRM, previous)
    replay = (stdout.getvalue()[:MAX_REPLAYED_CHARS], stderr.getvalue()[:MAX_REPLAYED_CHARS])
    _preloaded = Preloaded(code, library_code, library, module, *replay)
    return True


def _new_module(name: str, filename: str) -> types.ModuleType:
    """Create an empty module for user code."""
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__["__builtins__"] = builtins
    return module


def public_names(module: types.ModuleType) -> dict[str, Any]:
    """Return the names `from module import *` would give."""
    namespace = module.__dict__
    exported = namespace.get("__all__")
    if exported is not None:
        return {name: namespace[name] for name in exported if name in namespace}
    return {name: value for name, value in namespace.items() if not name.startswith("_")}


def call_context(connector: LoadedConnector) -> Any:
    """Call context(credentials=...) if defined; a falsy or missing result becomes {}."""
    func = connector.function("context")
    if func is None:
        return {}
    value = func(credentials=connector.request.credentials)
    return {} if _is_falsy(value) else value


def _is_falsy(value: Any) -> bool:
    """Say whether a value is falsy; values whose truth is ambiguous count as truthy."""
    try:
        return not value
    except Exception:  # e.g. a DataFrame raises on bool()
        return False
