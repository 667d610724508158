"""Serve one sandbox request inside a forked supervisor: the trusted side of one connector run.

The supervisor enters fresh namespaces and forks the connector's process (under the PID 1 of its
own PID namespace, so killing that kills every process it started) before the request comes:
the fork server keeps one such spare supervisor per request shape (network, /tmp size), and
hands it the next request's connection (see connector_engine.sandbox.forkserver). The connector
process warms up meanwhile (connector_engine.sandbox.connector_process). When the request comes,
the supervisor passes it on, captures the output at the fd level and enforces the wall-clock
timeout. What the process left is turned into the reply, with human errors and secrets masked,
by connector_engine.sandbox.outcomes before anything is sent back. User code never runs in this
process.

As soon as the whole result has arrived, the reply is sent; the connector's exit and the
namespaces' teardown happen after it. The reply carries `timings` (ms): entering the
namespaces, forking, the connector's own phases, the run as the supervisor saw it and the reply.

Cancel: the client half-closes the connection after sending its request and then waits for the
reply; closing it completely means "cancel". While the connector runs, the supervisor polls the
connection for that hang-up (POLLHUP) and, as soon as it sees it, kills the connector's process
group and its PID namespace exactly as on a timeout, then exits (there is nobody to reply to).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from connector_engine.masking import Masker, remote_secrets
from connector_engine.output import CappedOutput
from connector_engine.protocol import ErrorType, Limits, SandboxRequest, make_error
from connector_engine.sandbox.connector_process import (
    MAX_REQUEST_BYTES,
    run_connector_process,
    run_namespace_init,
)
from connector_engine.sandbox.namespaces import (
    RequestNamespaces,
    describe_isolation,
    enter_request_namespaces,
)
from connector_engine.sandbox.outcomes import (
    MAX_REPLY_BYTES,
    MAX_RESULT_BYTES,
    Capture,
    finish_table,
    interpret,
    mask_reply,
    reply_too_large_error,
)
from connector_engine.sandbox.shape import Shape
from connector_engine.system import linux
from connector_engine.system.framing import (
    decode_message,
    encode_message,
    message_size,
    read_until_eof,
    write_all,
)

SPARE_NAME = "cs-spare"  # a spare supervisor's process name until it is handed a request
EXIT_GRACE_S = 0.5  # how long to keep draining output after the connector's process ended


@dataclass
class Prepared:
    """A supervisor's namespaces and the connector process forked in them, waiting for its
    request."""

    namespaces: RequestNamespaces
    pid: int  # the supervisor's child: the namespace's init, or the connector's process
    log_r: int
    result_r: int
    status_r: int
    request_w: int
    timings: dict[str, float] = field(default_factory=dict)


def serve_connection(conn_fd: int, hidden_paths: list[str], isolation: str, shape: Shape) -> None:
    """Prepare for `shape` on demand, then serve the request on the connection; never returns."""
    linux.set_process_name("cs-supervisor")
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    prepared = prepare(hidden_paths, shape, warm=False)
    _serve(conn_fd, prepared, isolation)


def serve_when_handed(
    channel_fd: int, hidden_paths: list[str], isolation: str, shape: Shape
) -> None:
    """A spare supervisor: prepare for `shape` now, then serve the connection the fork server
    hands over on `channel_fd` (SCM_RIGHTS); exit if it closes the channel instead. Never
    returns."""
    linux.set_process_name(SPARE_NAME)
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    prepared = prepare(hidden_paths, shape, warm=True)
    channel = socket.socket(fileno=channel_fd)
    try:
        _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    except OSError:
        fds = []
    if not fds:
        kill_group(prepared.pid)
        os._exit(0)
    channel.close()
    linux.set_process_name("cs-supervisor")
    _serve(fds[0], prepared, isolation)


def _serve(conn_fd: int, prepared: Prepared, isolation: str) -> None:
    """Read one request from the connection, run it and send the reply; never returns."""
    try:
        request_bytes = read_until_eof(conn_fd, MAX_REQUEST_BYTES)
        envelope, _ = decode_message(request_bytes)
        request = SandboxRequest.from_dict(envelope)
        reply, table = supervise(request, request_bytes, prepared, isolation, client_fd=conn_fd)
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
    # The client stops reading at the message's end: this process's exit and its namespaces'
    # teardown happen after the user has the reply.
    os._exit(0)


def prepare(hidden_paths: list[str], shape: Shape, *, warm: bool) -> Prepared:
    """Enter the request's namespaces and fork its connector process, which waits for the
    request (after a warm-up when `warm`)."""
    started = time.perf_counter()
    namespaces = enter_request_namespaces(hidden_paths, shape.tmp_mb, network=shape.network)
    entered = time.perf_counter()
    log_r, log_w = os.pipe()
    result_r, result_w = os.pipe()
    status_r, status_w = os.pipe()
    request_r, request_w = os.pipe()
    fds = {"log_w": log_w, "result_w": result_w, "status_w": status_w, "request_r": request_r}
    pid = os.fork()
    if pid == 0:
        for fd in (log_r, result_r, status_r, request_w):
            os.close(fd)
        if namespaces.pid_namespace:
            run_namespace_init(fds, shape, warm=warm)
        os.close(status_w)
        run_connector_process(fds, shape, warm=warm)
    for fd in fds.values():
        os.close(fd)
    timings = {"namespaces_ms": (entered - started) * 1000}
    timings["fork_ms"] = (time.perf_counter() - entered) * 1000
    return Prepared(namespaces, pid, log_r, result_r, status_r, request_w, timings)


def supervise(
    request: SandboxRequest,
    request_bytes: bytes,
    prepared: Prepared,
    isolation: str,
    *,
    client_fd: int | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Hand the request to the prepared connector process; return the masked reply and table.

    With `client_fd`, a hang-up on that connection cancels the run (the child is killed).
    """
    started = time.perf_counter()
    deadline = time.monotonic() + request.limits.timeout_s
    namespaces = prepared.namespaces
    if not request.network and not namespaces.offline:  # fail closed: never run it online
        kill_group(prepared.pid)
        problems = "; ".join(namespaces.problems)
        error = make_error(
            ErrorType.SANDBOX_ERROR,
            f"This connection has no network access, and the sandbox could not take the "
            f"network away here ({problems}); nothing was run.",
        )
        reply = {"ok": False, "result": None, "logs": "", "error": error}
        reply["isolation"] = describe_isolation(isolation, namespaces)
        return reply, b""
    # Written as the connector process reads it, within the deadline: a spare whose connector
    # process is still busy (or stuck) importing ahead never blocks the supervisor.
    os.set_blocking(prepared.request_w, False)
    outgoing = Outgoing(prepared.request_w, request_bytes)
    capture = watch(prepared, request.limits, deadline, client_fd=client_fd, outgoing=outgoing)
    ran = time.perf_counter()
    masker = Masker(
        request.credentials,
        remote_secrets(request.spark_remote),
        secret_fields=request.secret_fields,
    )
    reply, table = interpret(request, capture)
    reply = mask_reply(reply, masker, data=request.mask_data)
    table = finish_table(request, reply, table, masker if request.mask_data else Masker())
    reply["isolation"] = describe_isolation(isolation, namespaces)
    timings = {**prepared.timings, **reply.pop("timings", {})}
    timings["connector_ms"] = (ran - started) * 1000
    timings["reply_ms"] = (time.perf_counter() - ran) * 1000
    reply["timings"] = {key: round(value, 2) for key, value in timings.items()}
    return reply, table


def watch(
    prepared: Prepared,
    limits: Limits,
    deadline: float,
    *,
    client_fd: int | None = None,
    outgoing: Outgoing | None = None,
) -> Capture:
    """Send the request (`outgoing`), collect output and result until the process ends, is too
    large, runs out of time or the client hangs up (cancel)."""
    pid, log_r, result_r, status_r = (
        prepared.pid,
        prepared.log_r,
        prepared.result_r,
        prepared.status_r,
    )
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
    if outgoing is not None and not outgoing.send():
        poller.register(outgoing.fd, select.POLLOUT)
    exited_at: float | None = None
    pid_ns = prepared.namespaces.pid_namespace
    while not capture.cancelled:
        now = time.monotonic()
        stop_at = deadline if exited_at is None else min(deadline, exited_at + EXIT_GRACE_S)
        if (exited_at is not None and not open_fds) or capture.too_large:
            break
        if result_complete(capture):
            break  # the whole result (and, before it, all the output) is here: reply now
        if now >= stop_at:
            capture.timed_out = exited_at is None
            break
        for fd, _ in poller.poll(max(1, int((stop_at - now) * 1000))):
            if fd == client_fd:
                capture.cancelled = True
                break
            if outgoing is not None and fd == outgoing.fd:
                if outgoing.send():
                    poller.unregister(fd)
                continue
            if fd == pidfd:
                poller.unregister(pidfd)
                exited_at = time.monotonic()
                if not pid_ns:
                    kill_group(pid)  # without a PID namespace, end what it left behind
            elif not read_into(fd, capture, log_r, status_r):
                poller.unregister(fd)
                open_fds.discard(fd)
    kill_group(pid)
    if outgoing is not None:
        outgoing.close()
    # With a whole result, the exit status says nothing more: the connector's exit and the
    # namespace's teardown are not waited for.
    waited = None if result_complete(capture) else os.wait4(pid, 0)
    drain(open_fds, capture, log_r, status_r)
    for fd in (log_r, result_r, status_r, pidfd):
        os.close(fd)
    if waited is not None:
        record_status(capture, waited[1], waited[2])
    return capture


class Outgoing:
    """The request, written into the connector process's pipe as it makes room; the pipe is
    closed once it is all written (the reader's EOF) or the run ends."""

    def __init__(self, fd: int, data: bytes) -> None:
        self.fd = fd
        self.rest = memoryview(data)
        self.closed = False

    def send(self) -> bool:
        """Write what the pipe takes now; True once nothing is left to write."""
        try:
            while self.rest:
                self.rest = self.rest[os.write(self.fd, self.rest[: 1 << 16]) :]
        except BlockingIOError:
            return False
        except OSError:  # the connector process is gone: watch reports how it ended
            self.rest = self.rest[:0]
        self.close()
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def result_complete(capture: Capture) -> bool:
    """Whether the connector's result message has fully arrived."""
    size = message_size(capture.result)
    return size is not None and len(capture.result) >= size


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
