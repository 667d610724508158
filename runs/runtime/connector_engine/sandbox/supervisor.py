"""Serve one sandbox request inside a forked supervisor: the trusted side of one connector run.

The supervisor enters fresh namespaces, forks the connector's process (PID 1 of its own PID
namespace, so killing it kills every process it started), captures its output at the fd level,
enforces the wall-clock timeout, turns process-level failures into human errors and masks secrets
before anything is sent back. User code never runs in this process.

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
from dataclasses import dataclass, field
from typing import Any

from connector_engine.masking import Masker, remote_secrets
from connector_engine.protocol import Limits, SandboxRequest, make_error, split_batch
from connector_engine.system import linux
from connector_engine.system.framing import (
    FrameError,
    decode_message,
    encode_message,
    read_until_eof,
    write_all,
)

MAX_RESULT_BYTES = 256 * 1024 * 1024  # a result (envelope + Arrow table) larger than this fails
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # code + library + credentials + object, generously
EXIT_GRACE_S = 0.5  # how long to keep draining output after the connector's process ended
NOBODY_UID = 65534
RESULT_FD = 3  # the connector process's result pipe, moved here before closing other fds
MB = 1024 * 1024


@dataclass
class RequestNamespaces:
    """Which per-request namespaces the supervisor managed to enter."""

    pid_namespace: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class Capture:
    """What the supervisor collected from the connector's process."""

    logs: bytearray = field(default_factory=bytearray)
    logs_dropped: int = 0
    result: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    cancelled: bool = False  # the client hung up: it no longer wants the result
    too_large: bool = False
    status_report: bytearray = field(default_factory=bytearray)
    status: int = 0
    maxrss_kb: int = 0
    cpu_s: float = 0.0


def serve_connection(conn_fd: int, hidden_paths: list[str], isolation: str) -> None:
    """Read one request from the connection, run it and send the reply; never returns."""
    try:
        linux.set_process_name("cs-supervisor")
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        request_bytes = read_until_eof(conn_fd, MAX_REQUEST_BYTES)
        envelope, _ = decode_message(request_bytes)
        request = SandboxRequest.from_dict(envelope)
        reply, table = supervise(request, hidden_paths, isolation, client_fd=conn_fd)
    except BaseException as exc:  # the reply must always be sent
        reply = {
            "ok": False,
            "result": None,
            "logs": "",
            "error": make_error("SandboxError", f"The sandbox failed: {exc!r}"),
            "isolation": isolation,
        }
        table = b""
    with contextlib.suppress(OSError):  # the client went away; nothing to tell
        write_all(conn_fd, encode_message(reply, table))
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
    masker = Masker(request.credentials, remote_secrets(request.spark_remote))
    namespaces = enter_request_namespaces(hidden_paths)
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
    reply = mask_reply(reply, masker)
    table = finish_table(request, reply, table, masker)
    reply["isolation"] = describe_isolation(isolation, namespaces)
    return reply, table


def enter_request_namespaces(hidden_paths: list[str]) -> RequestNamespaces:
    """Enter a user+mount namespace that hides paths, then a locked one with a new PID space."""
    state = RequestNamespaces()
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        # The kernel never enforces RLIMIT_NPROC for real uid 0; a real uid of nobody makes the
        # fork-bomb limit count while the effective uid keeps read access to the interpreter.
        try:
            os.setresuid(NOBODY_UID, 0, 0)
        except OSError as exc:
            state.problems.append(f"process limit not enforced for root ({exc.strerror})")
    try:
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS)
        linux.map_ids_to_self(uid, gid)
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    except OSError as exc:
        state.problems.append(f"per-request namespaces unavailable ({exc.strerror})")
        return state
    hide_paths(hidden_paths, state)
    try:
        # A second user namespace locks the mounts above: the connector cannot unmount them.
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS | linux.CLONE_NEWPID)
        linux.map_ids_to_self(0, 0)
        state.pid_namespace = True
    except OSError as exc:
        state.problems.append(f"no private PID namespace ({exc.strerror})")
    return state


def hide_paths(hidden_paths: list[str], state: RequestNamespaces) -> None:
    """Cover hidden directories with an empty read-only tmpfs and hidden files with /dev/null."""
    for path in hidden_paths:
        try:
            if os.path.isdir(path):
                flags = linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
                linux.mount("tmpfs", path, "tmpfs", flags, "size=4k,mode=0755")
            elif os.path.exists(path):
                linux.mount("/dev/null", path, None, linux.MS_BIND)
        except OSError as exc:
            state.problems.append(f"could not hide {path} ({exc.strerror})")


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
            error = make_error("SandboxError", message)
            error["traceback"] = traceback.format_exc()
            if isinstance(exc, MemoryError):
                error = make_error("MemoryError", "out of memory while returning the result")
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
    capture = Capture()
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
            elif not read_into(fd, capture, limits, log_r, status_r):
                poller.unregister(fd)
                open_fds.discard(fd)
    kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    drain(open_fds, capture, limits, log_r, status_r)
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


def read_into(fd: int, capture: Capture, limits: Limits, log_r: int, status_r: int) -> bool:
    """Read one chunk into the capture; return False at EOF."""
    chunk = os.read(fd, 1 << 20)
    if not chunk:
        return False
    if fd == log_r:
        room = max(limits.max_output_bytes - len(capture.logs), 0)
        capture.logs += chunk[:room]
        capture.logs_dropped += max(len(chunk) - room, 0)
    elif fd == status_r:
        capture.status_report += chunk[:4096]
    else:
        capture.result += chunk
        capture.too_large = len(capture.result) > MAX_RESULT_BYTES
    return True


def drain(open_fds: set[int], capture: Capture, limits: Limits, log_r: int, status_r: int) -> None:
    """Read what is still buffered in the pipes after the process is gone, then close them."""
    for fd in list(open_fds):
        os.set_blocking(fd, False)
        try:
            while not capture.too_large and read_into(fd, capture, limits, log_r, status_r):
                pass
        except BlockingIOError:
            pass


def kill_group(pid: int) -> None:
    """SIGKILL the connector's process and its process group; as PID 1 its namespace dies too."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError):
            kill(pid, signal.SIGKILL)


def interpret(request: SandboxRequest, capture: Capture) -> tuple[dict[str, Any], bytes]:
    """Turn what the process left behind into a reply (unmasked) and its Arrow table bytes."""
    limits = request.limits
    reply: dict[str, Any] = {"ok": False, "result": None, "error": None}
    reply["logs"] = logs_text(capture)
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
            reply["error"] = envelope.get("error")
        except (FrameError, ValueError):
            reply["error"] = make_error(
                "SandboxError", "The connector's process returned an unreadable result."
            )
        for holder in (reply, *batch_items(reply)):
            error = holder.get("error")
            if isinstance(error, dict) and error.get("type") == "MemoryError":
                holder["error"] = memory_error_from_user_code(error, limits)
    else:
        reply["error"] = exit_error(capture, limits)
    return reply, table


def logs_text(capture: Capture) -> str:
    """Decode the captured output and append a marker for what was cut."""
    text = capture.logs.decode("utf-8", errors="replace")
    if capture.logs_dropped:
        text += f"\n[output cut: {human_size(capture.logs_dropped)} more not shown]"
    return text


def human_size(size: int) -> str:
    """Return a size like '512 bytes', '3.4 kB' or '12.3 MB'."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1000 * 1000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1000 / 1000:.1f} MB"


def too_large_error() -> dict[str, Any]:
    """Return the error for a result above MAX_RESULT_BYTES."""
    return make_error(
        "OutputTooLarge",
        f"The result is larger than {MAX_RESULT_BYTES // MB} MB and was not returned; "
        "read fewer rows per partition or split the data into more partitions.",
    )


def cancelled_error() -> dict[str, Any]:
    """Return the error for a run its client cancelled."""
    return make_error("Cancelled", "The run was cancelled; all its processes were killed.")


def timeout_error(limits: Limits) -> dict[str, Any]:
    """Return the error for a run that hit the wall-clock timeout."""
    return make_error(
        "Timeout",
        f"The connector ran longer than {limits.timeout_s:g} s and was stopped; "
        "all its processes were killed.",
    )


def memory_error_from_user_code(error: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Keep the user's line but report the type MemoryLimit and mention the limit."""
    message = str(error.get("message") or "")
    if "memory limit" not in message:
        prefix = f"The connector ran out of memory at the memory limit of {limits.memory_mb} MB"
        message = prefix + (f" ({message})." if message else ".")
    return {**error, "type": "MemoryLimit", "message": message}


def exit_error(capture: Capture, limits: Limits) -> dict[str, Any]:
    """Explain why the process ended without writing a result."""
    status = capture.status
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return make_error(
            "ProcessExit",
            f"The connector ended the process (exit code {code}) before returning a result, "
            "e.g. with os._exit(); return from the function or raise an exception instead.",
        )
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and capture.cpu_s >= limits.cpu_s):
        return make_error(
            "CpuLimit",
            f"The connector used more than {limits.cpu_s} s of CPU time and was stopped.",
        )
    if signum in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS) and looks_like_oom(
        capture, limits
    ):
        return make_error(
            "MemoryLimit",
            f"The connector was killed at the memory limit of {limits.memory_mb} MB.",
        )
    return make_error("KilledBySignal", f"The connector's process was {signal_phrase(signum)}.")


def looks_like_oom(capture: Capture, limits: Limits) -> bool:
    """Guess whether a crash came from running out of memory."""
    rss = capture.maxrss_kb * 1024
    tail = bytes(capture.logs[-4096:])
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


def mask_reply(reply: dict[str, Any], masker: Masker) -> dict[str, Any]:
    """Mask secrets in the logs, the result and the error."""
    return {key: masker.value(value) for key, value in reply.items()}


def batch_items(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the items of a batch read's reply (none for any other reply)."""
    result = reply.get("result")
    items = result.get("batch") if isinstance(result, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def finish_table(
    request: SandboxRequest, reply: dict[str, Any], table_bytes: bytes, masker: Masker
) -> bytes:
    """Mask the Arrow table, fill preview rows, and return the masked IPC stream.

    The table is always decoded, validated and written again, secrets or not: the trusted side
    only ever decodes IPC bytes that pyarrow produced here, never the connector's own bytes.
    """
    if request.objects is not None:
        return finish_batch_tables(reply, table_bytes, masker)
    if not table_bytes:
        return b""
    try:
        table = checked_table(table_bytes, masker)
    except Exception as exc:
        reply.update(ok=False, error=make_error("SandboxError", f"Unreadable table: {exc}"))
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
            error=make_error("SandboxError", "The batch read returned unreadable tables."),
        )
        return b""
    streams = []
    for item, data in pairs:
        stream = b""
        if data:
            try:
                stream = table_to_ipc(checked_table(data, masker))
            except Exception as exc:
                error = make_error("SandboxError", f"Unreadable table: {exc}")
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


def describe_isolation(isolation: str, namespaces: RequestNamespaces) -> str:
    """Return the isolation string, reduced when a per-request layer failed."""
    if not namespaces.problems:
        return isolation
    problems = "; ".join(namespaces.problems)
    if isolation.startswith("reduced isolation:"):
        return f"{isolation}; {problems}"
    return f"reduced isolation: {isolation}, but {problems}"
