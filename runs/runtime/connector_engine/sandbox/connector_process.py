"""The processes a request's supervisor forks: the namespace's init and the connector's process.

The connector's process is forked before its request is known (see
connector_engine.sandbox.supervisor): it first runs a warm-up connector of the engine's own, so
the pages every run touches are copied from the fork server once, ahead of time, and not while a
user waits; then it isolates itself (output, environment, working directory) and waits for the
request on REQUEST_FD. Only then does it take the request's limits, and run user code.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import io
import json
import os
import resource
import signal
import sys
import time
import traceback

from connector_engine.child import loader
from connector_engine.child.loader import CONNECTOR_MODULE
from connector_engine.protocol import LIBRARY_MODULE, ErrorType, Limits, SandboxRequest, make_error
from connector_engine.sandbox.outcomes import MB, table_to_ipc, tables_to_ipc
from connector_engine.sandbox.shape import MAX_MODULES, Shape
from connector_engine.system import linux
from connector_engine.system.framing import (
    decode_message,
    encode_message,
    read_until_eof,
    write_all,
)

RESULT_FD = 3  # the connector process's result pipe, moved here before closing other fds
REQUEST_FD = 4  # where it reads its request (the supervisor writes it once it has one)
FDS_KEPT = ("result_w", "request_r", "log_w")
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # code + library + credentials + objects, generously
PRELOAD_TIMEOUT_S = 10.0  # a spare's warm_up() ahead of the request, at most

WARM_UP_CONNECTOR = """
import pandas as pd

def list_objects(context, metadata):
    yield {"name": "warm-up", "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": [1, 2], "s": ["a", None], "t": pd.to_datetime(["2024-01-01", None])})
"""
WARM_UP_ACTIONS = ("context", "list", "read", "schema")


def warm_up() -> None:
    """Run the engine's own small connector through every common action, output discarded.

    In the fork server this fills lazy imports and caches once; in a freshly forked connector
    process it copies the pages a run touches before the request comes.
    """
    from connector_engine.child import actions

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for action in WARM_UP_ACTIONS:
            actions.execute(SandboxRequest(action=action, code=WARM_UP_CONNECTOR))


def run_namespace_init(fds: dict[str, int], shape: Shape, *, warm: bool) -> None:
    """Be PID 1 of the request's PID namespace: start the connector, reap, report its status.

    The connector is not PID 1 itself because the kernel shields PID 1 from its own signals
    (os.kill(os.getpid(), ...), abort()); when this process exits, every process left in the
    namespace is killed.
    """
    try:
        linux.set_process_name("cs-init")
        os.setsid()
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        mount_private_proc()
        child = os.fork()
        if child == 0:
            os.close(fds["status_w"])
            run_connector_process(fds, shape, warm=warm)
        for name in ("log_w", "result_w", "request_r"):
            os.close(fds[name])
        while True:
            pid, status, usage = os.wait4(-1, 0)
            if pid == child:
                break
        report = {"status": status, "maxrss_kb": usage.ru_maxrss}
        report["cpu_s"] = usage.ru_utime + usage.ru_stime
        write_all(fds["status_w"], json.dumps(report).encode())
    finally:
        os._exit(0)


def run_connector_process(fds: dict[str, int], shape: Shape, *, warm: bool) -> None:
    """Become the connector's process: warm up, drop everything, take the shape's limits,
    import the tenant's modules (and preload its connector), wait for the request and run it."""
    try:
        if warm:
            with contextlib.suppress(Exception):
                warm_up()
        my_pid = prepare_connector_process(fds)
        set_limits(shape.limits())
        if warm and shape.modules:
            import_ahead(shape.modules)
        if warm and shape.code:
            loader.preload(shape.code, shape.library_code, PRELOAD_TIMEOUT_S)
        data = read_until_eof(REQUEST_FD, MAX_REQUEST_BYTES)
        started = time.perf_counter()
        os.close(REQUEST_FD)
        request = SandboxRequest.from_dict(decode_message(data)[0])
        from connector_engine.child import actions

        loaded = set(sys.modules)
        received = time.perf_counter()
        outcome = actions.execute(request)
        if os.getpid() != my_pid:
            os._exit(0)  # a fork of the connector returned here; only the original reports
        executed = time.perf_counter()
        envelope = {"ok": outcome.ok, "result": outcome.result, "error": outcome.error}
        envelope["imported"] = imported_since(loaded)
        envelope["warm_up"] = loader.warm_up_state()
        if outcome.tables is not None:
            payload, sizes = tables_to_ipc(outcome.tables)
            for item, size in zip(outcome.result["batch"], sizes, strict=True):
                item["table_bytes"] = size
        else:
            payload = table_to_ipc(outcome.table)
        envelope["timings"] = {
            "request_ms": (received - started) * 1000,
            "execute_ms": (executed - received) * 1000,
            "arrow_ms": (time.perf_counter() - executed) * 1000,
        }
        write_all(RESULT_FD, encode_message(envelope, payload))
    except BaseException as exc:  # report the engine's own failure instead of dying silently
        try:
            message = f"The engine failed inside the sandbox: {exc!r}"
            error = make_error(ErrorType.SANDBOX_ERROR, message)
            error["traceback"] = traceback.format_exc()
            if isinstance(exc, MemoryError):
                error = make_error(MemoryError.__name__, "out of memory while returning the result")
            write_all(RESULT_FD, encode_message({"ok": False, "result": None, "error": error}))
        except BaseException:
            pass
    os._exit(0)


def import_ahead(modules: tuple[str, ...]) -> None:
    """Import the modules this tenant's earlier runs imported, output discarded; a module that
    fails is left for the run to import (and report)."""
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except BaseException:
                continue
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def imported_since(loaded: set[str]) -> list[str]:
    """Modules the run imported, submodules included (the connector's and library's own
    modules aside), in the order they were imported."""
    own = (CONNECTOR_MODULE, LIBRARY_MODULE)
    names = [name for name in sys.modules if name not in loaded]
    return [
        name for name in names if name.partition(".")[0] not in own and not name.startswith("_")
    ][:MAX_MODULES]


def prepare_connector_process(fds: dict[str, int]) -> int:
    """Isolate the forked process and redirect its output; return its pid."""
    linux.set_process_name("cs-connector")
    os.setsid()
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    # Above the slots first: a pipe may have one of the numbers the others move to.
    high = {name: fcntl.fcntl(fds[name], fcntl.F_DUPFD, 16) for name in FDS_KEPT}
    os.dup2(high["result_w"], RESULT_FD)
    os.dup2(high["request_r"], REQUEST_FD)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(high["log_w"], 1)
    os.dup2(high["log_w"], 2)
    os.closerange(REQUEST_FD + 1, max_fd())
    os.set_inheritable(RESULT_FD, False)
    os.set_inheritable(REQUEST_FD, False)
    os.environ.clear()
    os.environ.update(connector_environment())
    # Unbuffered text streams: output written before a crash or a kill is not lost.
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "wb", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "wb", closefd=False), write_through=True, errors="backslashreplace"
    )
    os.chdir("/tmp")
    return os.getpid()


def mount_private_proc() -> None:
    """Mount a /proc that shows only this request's processes (best effort)."""
    try:
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
        linux.mount("proc", "/proc", "proc", flags)
    except OSError:
        pass  # the outer /proc stays; other processes are still unreachable by PID namespace


def max_fd() -> int:
    """Return the highest file descriptor number that may be open, plus one."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536


def connector_environment() -> dict[str, str]:
    """Return the only environment variables user code sees."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def set_limits(limits: Limits) -> None:
    """Apply the request's resource limits to this process and everything it starts."""
    # Preloaded pandas/pyarrow already occupy address space: the budget comes on top of it.
    address_space = linux.vm_size_bytes() + limits.memory_mb * MB
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    file_size = limits.max_file_mb * MB
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
