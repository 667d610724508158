"""Serve one sandbox request inside a forked supervisor: the trusted side of one connector run.

The supervisor enters fresh namespaces, forks the connector's process (PID 1 of its own PID
namespace, so killing it kills every process it started), sets its limits, captures its output at
the fd level and enforces the wall-clock timeout. What the process left is turned into the reply,
with human errors and secrets masked, by connector_engine.sandbox.outcomes before anything is sent
back. User code never runs in this process.

Cancel: the client half-closes the connection after sending its request and then waits for the
reply; closing it completely means "cancel". While the connector runs, the supervisor polls the
connection for that hang-up (POLLHUP) and, as soon as it sees it, kills the connector's process
group and its PID namespace exactly as on a timeout, then exits (there is nobody to reply to).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import Any

from connector_engine.masking import Masker, remote_secrets
from connector_engine.output import CappedOutput
from connector_engine.protocol import ErrorType, Limits, SandboxRequest, make_error
from connector_engine.sandbox.namespaces import (
    describe_isolation,
    enter_request_namespaces,
)
from connector_engine.sandbox.outcomes import (
    MAX_REPLY_BYTES,
    MAX_RESULT_BYTES,
    MB,
    Capture,
    finish_table,
    interpret,
    mask_reply,
    reply_too_large_error,
    table_to_ipc,
    tables_to_ipc,
)
from connector_engine.system import linux
from connector_engine.system.framing import (
    decode_message,
    encode_message,
    read_until_eof,
    write_all,
)

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # code + library + credentials + object, generously
EXIT_GRACE_S = 0.5  # how long to keep draining output after the connector's process ended
RESULT_FD = 3  # the connector process's result pipe, moved here before closing other fds


def serve_connection(conn_fd: int, hidden_paths: list[str], isolation: str) -> None:
    """Read one request from the connection, run it and send the reply; never returns."""
    try:
        linux.set_process_name("cs-supervisor")
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        request_bytes = read_until_eof(conn_fd, MAX_REQUEST_BYTES)
        envelope, _ = decode_message(request_bytes)
        request = SandboxRequest.from_dict(envelope)
        reply, table = supervise(request, hidden_paths, isolation, client_fd=conn_fd)
        message = encode_message(reply, table)
        if len(message) > MAX_REPLY_BYTES:  # fail this request alone, never the fork server
            reply.update(ok=False, result=None, error=reply_too_large_error(len(message)))
            message = encode_message(reply)
    except BaseException as exc:  # the reply must always be sent
        reply = {
            "ok": False,
            "result": None,
            "logs": "",
            "error": make_error(ErrorType.SANDBOX_ERROR, f"The sandbox failed: {exc!r}"),
            "isolation": isolation,
        }
        message = encode_message(reply)
    with contextlib.suppress(OSError):  # the client went away; nothing to tell
        write_all(conn_fd, message)
    os._exit(0)


def supervise(
    request: SandboxRequest,
    hidden_paths: list[str],
    isolation: str,
    *,
    client_fd: int | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Run the request's connector code in a child and return the masked reply and table.

    With `client_fd`, a hang-up on that connection cancels the run (the child is killed).
    """
    deadline = time.monotonic() + request.limits.timeout_s
    masker = Masker(
        request.credentials,
        remote_secrets(request.spark_remote),
        secret_fields=request.secret_fields,
    )
    namespaces = enter_request_namespaces(
        hidden_paths, request.limits.tmp_mb, network=request.network
    )
    if not request.network and not namespaces.offline:  # fail closed: never run it online
        problems = "; ".join(namespaces.problems)
        error = make_error(
            ErrorType.SANDBOX_ERROR,
            f"This connection has no network access, and the sandbox could not take the "
            f"network away here ({problems}); nothing was run.",
        )
        reply = {"ok": False, "result": None, "logs": "", "error": error}
        reply["isolation"] = describe_isolation(isolation, namespaces)
        return reply, b""
    log_r, log_w = os.pipe()
    result_r, result_w = os.pipe()
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        for fd in (log_r, result_r, status_r):
            os.close(fd)
        if namespaces.pid_namespace:
            run_namespace_init(request, log_w, result_w, status_w)
        os.close(status_w)
        run_connector_process(request, log_w, result_w)
    for fd in (log_w, result_w, status_w):
        os.close(fd)
    pid_ns = namespaces.pid_namespace
    capture = watch(
        pid, log_r, result_r, status_r, request.limits, deadline, pid_ns, client_fd=client_fd
    )
    reply, table = interpret(request, capture)
    reply = mask_reply(reply, masker, data=request.mask_data)
    table = finish_table(request, reply, table, masker if request.mask_data else Masker())
    reply["isolation"] = describe_isolation(isolation, namespaces)
    return reply, table


def run_namespace_init(request: SandboxRequest, log_w: int, result_w: int, status_w: int) -> None:
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
            os.close(status_w)
            run_connector_process(request, log_w, result_w)
        os.close(log_w)
        os.close(result_w)
        while True:
            pid, status, usage = os.wait4(-1, 0)
            if pid == child:
                break
        report = {"status": status, "maxrss_kb": usage.ru_maxrss}
        report["cpu_s"] = usage.ru_utime + usage.ru_stime
        write_all(status_w, json.dumps(report).encode())
    finally:
        os._exit(0)


def run_connector_process(request: SandboxRequest, log_w: int, result_w: int) -> None:
    """Become the connector's process: drop everything, run the action, write the result."""
    try:
        my_pid = prepare_connector_process(request.limits, log_w, result_w)
        from connector_engine.child import actions

        outcome = actions.execute(request)
        if os.getpid() != my_pid:
            os._exit(0)  # a fork of the connector returned here; only the original reports
        envelope = {"ok": outcome.ok, "result": outcome.result, "error": outcome.error}
        if outcome.tables is not None:
            payload, sizes = tables_to_ipc(outcome.tables)
            for item, size in zip(outcome.result["batch"], sizes, strict=True):
                item["table_bytes"] = size
        else:
            payload = table_to_ipc(outcome.table)
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


def prepare_connector_process(limits: Limits, log_w: int, result_w: int) -> int:
    """Isolate the forked process, redirect its output and set its limits; return its pid."""
    linux.set_process_name("cs-connector")
    os.setsid()
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    os.dup2(result_w, RESULT_FD)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_w, 1)
    os.dup2(log_w, 2)
    os.closerange(RESULT_FD + 1, max_fd())
    os.set_inheritable(RESULT_FD, False)
    os.environ.clear()
    os.environ.update(connector_environment())
    # Unbuffered text streams: output written before a crash or a kill is not lost.
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "wb", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "wb", closefd=False), write_through=True, errors="backslashreplace"
    )
    os.chdir("/tmp")
    set_limits(limits)
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


def watch(
    pid: int,
    log_r: int,
    result_r: int,
    status_r: int,
    limits: Limits,
    deadline: float,
    pid_ns: bool,
    *,
    client_fd: int | None = None,
) -> Capture:
    """Collect output and result until the process ends, is too large, runs out of time or the
    client hangs up (cancel)."""
    capture = Capture(CappedOutput(limits.max_output_bytes))
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    open_fds = {log_r, result_r, status_r}
    for fd in (*open_fds, pidfd):
        poller.register(fd, select.POLLIN)
    if client_fd is not None:
        # Event mask 0: only POLLHUP/POLLERR are reported. The client's half-close after its
        # request is not a hang-up; closing the socket completely is.
        poller.register(client_fd, 0)
    exited_at: float | None = None
    while not capture.cancelled:
        now = time.monotonic()
        stop_at = deadline if exited_at is None else min(deadline, exited_at + EXIT_GRACE_S)
        if (exited_at is not None and not open_fds) or capture.too_large:
            break
        if now >= stop_at:
            capture.timed_out = exited_at is None
            break
        for fd, _ in poller.poll(max(1, int((stop_at - now) * 1000))):
            if fd == client_fd:
                capture.cancelled = True
                break
            if fd == pidfd:
                poller.unregister(pidfd)
                exited_at = time.monotonic()
                if not pid_ns:
                    kill_group(pid)  # without a PID namespace, end what it left behind
            elif not read_into(fd, capture, log_r, status_r):
                poller.unregister(fd)
                open_fds.discard(fd)
    kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    drain(open_fds, capture, log_r, status_r)
    for fd in (log_r, result_r, status_r, pidfd):
        os.close(fd)
    record_status(capture, status, usage)
    return capture


def record_status(capture: Capture, status: int, usage: resource.struct_rusage) -> None:
    """Keep the connector's exit status: from the namespace's init when it reported one."""
    capture.status, capture.maxrss_kb = status, usage.ru_maxrss
    capture.cpu_s = usage.ru_utime + usage.ru_stime
    if capture.status_report:
        try:
            report = json.loads(bytes(capture.status_report))
            capture.status, capture.maxrss_kb = int(report["status"]), int(report["maxrss_kb"])
            capture.cpu_s = float(report["cpu_s"])
        except (ValueError, KeyError, TypeError):
            pass


def read_into(fd: int, capture: Capture, log_r: int, status_r: int) -> bool:
    """Read one chunk into the capture; return False at EOF."""
    chunk = os.read(fd, 1 << 20)
    if not chunk:
        return False
    if fd == log_r:
        capture.logs.add(chunk)
    elif fd == status_r:
        capture.status_report += chunk[:4096]
    else:
        capture.result += chunk
        capture.too_large = len(capture.result) > MAX_RESULT_BYTES
    return True


def drain(open_fds: set[int], capture: Capture, log_r: int, status_r: int) -> None:
    """Read what is still buffered in the pipes after the process is gone, then close them."""
    for fd in list(open_fds):
        os.set_blocking(fd, False)
        try:
            while not capture.too_large and read_into(fd, capture, log_r, status_r):
                pass
        except BlockingIOError:
            pass


def kill_group(pid: int) -> None:
    """SIGKILL the connector's process and its process group; as PID 1 its namespace dies too."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError):
            kill(pid, signal.SIGKILL)
