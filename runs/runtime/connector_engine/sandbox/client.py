"""Run untrusted connector code: the client side of a sandbox's warm fork server.

`run_action(request, sandbox=...)` sends the request to a long-lived fork server process
(`connector_engine.sandbox.forkserver`) that has pandas and pyarrow preloaded and forks a
supervised, namespaced, rlimited child per request. The fork server runs under bubblewrap when it
is installed, so every fork inherits its allow-list view (read-only), a private /tmp and the hidden
paths covered. If
the fork server dies, the next request respawns it.

Cancel: `run_action(request, cancel=event)` takes a threading.Event. While waiting for the reply
the client checks it every CANCEL_POLL_S; once it is set, the client closes its connection and
returns a "Cancelled" result at once. The request's supervisor sees that hang-up and kills the
connector's processes (its process group and PID namespace) immediately.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from connector_engine import IMPORT_ROOT
from connector_engine.protocol import ErrorType, SandboxRequest, SandboxResult, make_error
from connector_engine.sandbox.outcomes import (
    MAX_REPLY_BYTES,
    cancelled_error,
    reply_too_large_error,
)
from connector_engine.sandbox.replies import (
    ReplyTooLarge,
    RequestCancelled,
    receive_all,
    receive_cancellable,
)
from connector_engine.sandbox.shape import MAX_MODULES, Learned, Shape, preload_digest
from connector_engine.system.bubblewrap import bwrap_choice, bwrap_filesystem, bwrap_namespaces
from connector_engine.system.framing import (
    FrameError,
    decode_message,
    encode_message,
)

REPLY_MARGIN_S = 30.0  # how much longer than the request's timeout the client waits for a reply
STOP_GRACE_S = 2.0
MAX_TENANTS = 256  # tenants whose learned imports are remembered
# Where a package environment's site-packages appear inside bubblewrap (its private /tmp).
ENVIRONMENT_MOUNT = "/tmp/connector-environment"


class ForkServerUnavailable(Exception):
    """The fork server refused the connection or closed it before replying."""


class _ForkServer:
    """One running fork server process and the private directory holding its socket."""

    def __init__(
        self,
        argv_prefix: list[str],
        hidden_paths: list[str],
        isolation: str,
        python_paths: Sequence[str] = (),
    ) -> None:
        self.directory = tempfile.mkdtemp(prefix=f"connector-sandbox-{os.getpid()}-")  # mode 0700
        self.socket_path = os.path.join(self.directory, "forkserver.sock")
        self.stderr_path = os.path.join(self.directory, "forkserver.log")
        self.process: subprocess.Popen[bytes] | None = None
        lifeline_r, self.lifeline_w = os.pipe()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
            listener.listen(128)
            config = {
                "hidden_paths": [*hidden_paths, self.directory],
                "isolation": isolation,
                "python_paths": list(python_paths),  # appended to sys.path (environments)
            }
            argv = [
                *argv_prefix,
                sys.executable,
                "-m",
                "connector_engine.sandbox.forkserver",
                f"--listen-fd={listener.fileno()}",
                f"--lifeline-fd={lifeline_r}",
                f"--config={json.dumps(config)}",
            ]
            self.process = _spawn_kept(argv, (listener.fileno(), lifeline_r), self.stderr_path)
        finally:
            # Only the fork server holds the listener now: if it dies, connecting fails at once.
            listener.close()
            os.close(lifeline_r)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def request(
        self,
        request: SandboxRequest,
        shape: Shape,
        cancel: threading.Event | None = None,
        *,
        together: bool = False,
    ) -> tuple[dict[str, Any], bytes]:
        """Send one request after its shape (what its tenant's earlier runs taught; `together`:
        another of that shape is running) and return the reply envelope and table bytes."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(request.limits.timeout_s + REPLY_MARGIN_S)
            try:
                conn.connect(self.socket_path)
                conn.sendall(shape.pack(together=together) + encode_message(request.to_dict()))
                conn.shutdown(socket.SHUT_WR)
                if cancel is None:
                    data = receive_all(conn, MAX_REPLY_BYTES)
                else:
                    deadline = time.monotonic() + request.limits.timeout_s + REPLY_MARGIN_S
                    data = receive_cancellable(conn, MAX_REPLY_BYTES, cancel, deadline)
            except (ConnectionError, FileNotFoundError, BrokenPipeError) as exc:
                raise ForkServerUnavailable(f"fork server unreachable: {exc}") from exc
        if not data:
            raise ForkServerUnavailable("fork server closed the connection without replying")
        try:
            return decode_message(data)
        except (FrameError, ValueError) as exc:
            raise ForkServerUnavailable(f"truncated reply from the fork server: {exc}") from exc

    def prepare(self, request: SandboxRequest, learned: Learned) -> None:
        """Ask for a spare of the request's shape with what its tenant's runs taught (its
        modules imported, its connector preloaded); no request follows."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(REPLY_MARGIN_S)
            with contextlib.suppress(OSError):  # a spare is an optimisation
                conn.connect(self.socket_path)
                conn.sendall(learned.shape(request).pack(prepare_only=True))

    def stderr_tail(self) -> str:
        """Return the end of the fork server's own error output (for SandboxError messages)."""
        try:
            with open(self.stderr_path, "rb") as handle:
                return handle.read()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the fork server and everything it started, then remove its directory."""
        with contextlib.suppress(OSError):
            os.close(self.lifeline_w)  # the fork server exits when its lifeline closes
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_GRACE_S)
        shutil.rmtree(self.directory, ignore_errors=True)


def _spawn_kept(argv: list[str], fds: tuple[int, int], stderr_path: str) -> subprocess.Popen:
    """Start the fork server from a thread that lives exactly as long as the fork server.

    bubblewrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that forked it
    exits; Django runs requests in short-lived threads, so the spawning thread must outlive it.
    """
    started = threading.Event()
    outcome: dict[str, Any] = {}

    def keep() -> None:
        try:
            with open(stderr_path, "wb") as stderr:
                outcome["process"] = subprocess.Popen(
                    argv,
                    env=forkserver_environment(),
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                    pass_fds=fds,
                    start_new_session=True,
                )
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            started.set()
        if "process" in outcome:
            outcome["process"].wait()

    threading.Thread(target=keep, name="sandbox-forkserver-keeper", daemon=True).start()
    started.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["process"]


def forkserver_environment() -> dict[str, str]:
    """Return the fork server's whole environment: nothing of the server's is inherited."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": IMPORT_ROOT,
        "PYTHONDONTWRITEBYTECODE": "1",
        # Few malloc arenas: threads in user code otherwise reserve 64 MB of address space
        # each, which would count against the RLIMIT_AS memory budget.
        "MALLOC_ARENA_MAX": "2",
    }


def sandbox_python_paths(python_paths: Sequence[str], use_bwrap: bool) -> list[str]:
    """Where the fork server sees `python_paths`: under bubblewrap, read-only mounts in its /tmp."""
    if not use_bwrap:
        return list(python_paths)
    return [f"{ENVIRONMENT_MOUNT}/{number}" for number in range(len(python_paths))]


def bwrap_prefix(
    bwrap: str,
    hidden_paths: Sequence[str],
    python_paths: Sequence[str] = (),
    readable_paths: Sequence[str] = (),
) -> list[str]:
    """Return the bubblewrap command line that wraps the fork server.

    `python_paths` (a package environment, usually inside the hidden data directory) are
    mounted read-only at the paths `sandbox_python_paths` names, outside every hidden path;
    `readable_paths` (the operator's source folders) appear read-only where they are.
    """
    mounts = zip(python_paths, sandbox_python_paths(python_paths, True), strict=True)
    filesystem = bwrap_filesystem(
        hidden_paths, readonly_binds=mounts, readable_paths=readable_paths
    )
    argv = [bwrap, *filesystem]
    # As root, bubblewrap without a user namespace keeps the real root uid, which lets each
    # request's supervisor become nobody before it runs user code; the fork server keeps only
    # the capabilities that needs (user code runs in nested namespaces, with none).
    argv += bwrap_namespaces(root_capabilities=("CAP_SETUID", "CAP_SETGID", "CAP_SETFCAP"))
    argv += ["--die-with-parent", "--new-session", "--clearenv", "--chdir", "/"]
    for name, value in forkserver_environment().items():
        argv += ["--setenv", name, value]
    return [*argv, "--"]


class Sandbox:
    """A warm fork server that runs sandboxed requests; thread-safe, restarted if it dies."""

    def __init__(
        self,
        hidden_paths: Sequence[str] = (),
        use_bwrap: bool | None = None,
        python_paths: Sequence[str] = (),
        *,
        readable_paths: Sequence[str] = (),
    ) -> None:
        self.hidden_paths = [os.path.abspath(path) for path in hidden_paths]
        self.python_paths = [os.path.abspath(path) for path in python_paths]
        # Under bubblewrap the view is an allow-list: the system, the engine and these folders.
        self.readable_paths = [os.path.abspath(path) for path in readable_paths]
        self._bwrap, self.isolation = bwrap_choice(
            use_bwrap,
            "the filesystem is not read-only and /tmp is shared (hidden paths, rlimits and "
            "namespaces still apply)",
        )
        self.use_bwrap = self._bwrap is not None
        self._lock = threading.Lock()
        self._forkserver: _ForkServer | None = None
        # Per tenant, what its runs taught, the most recently used tenants last.
        self._taught: OrderedDict[str, Learned] = OrderedDict()
        self._in_flight: Counter[Shape] = Counter()  # requests running now, per shape
        _live_sandboxes.add(self)

    def run(
        self, request: SandboxRequest, *, cancel: threading.Event | None = None
    ) -> SandboxResult:
        """Run one request in a forked child of the warm fork server and return its masked result.

        Setting `cancel` kills the request's processes and returns a "Cancelled" result.
        """
        started = time.monotonic()
        problem = ""
        for _attempt in range(2):  # one retry: the fork server may have died since the last request
            if cancel is not None and cancel.is_set():
                return self._cancelled(request, started)
            try:
                forkserver = self._current_forkserver()
            except OSError as exc:
                problem = f"the fork server could not start: {exc}"
                break
            try:
                learned = self._learned(request)
                shape = learned.shape(request) if learned else Shape.of(request)
                with self._running(shape) as running:
                    envelope, table = forkserver.request(
                        request, shape, cancel, together=running > 1
                    )
            except RequestCancelled:
                return self._cancelled(request, started)
            except ReplyTooLarge as exc:
                # The supervisor caps its reply; only a broken one gets here. This request fails,
                # the fork server (and every request it serves) carries on.
                return self._failed(request, reply_too_large_error(exc.size), started)
            except ForkServerUnavailable as exc:
                problem = f"{exc}. {forkserver.stderr_tail()}".strip()
                self._discard(forkserver)
                continue
            except TimeoutError:
                problem = "the fork server did not answer in time"
                break
            if learned := self._learn(request, envelope):
                forkserver.prepare(request, learned)  # for this tenant's next request
            return self._result(request, envelope, table, started)
        error = make_error(ErrorType.SANDBOX_ERROR, f"The sandbox failed: {problem}")
        return self._failed(request, error, started)

    def _cancelled(self, request: SandboxRequest, started: float) -> SandboxResult:
        """Return the result of a request its caller cancelled."""
        return self._failed(request, cancelled_error(), started)

    def _failed(
        self, request: SandboxRequest, error: dict[str, Any], started: float
    ) -> SandboxResult:
        """Return a failed result of this sandbox that no supervisor replied to."""
        return SandboxResult(
            ok=False,
            action=request.action,
            error=error,
            duration_ms=_elapsed_ms(started),
            isolation=self.isolation,
        )

    @contextlib.contextmanager
    def _running(self, shape: Shape) -> Iterator[int]:
        """Count the requests of a shape running now (this one included) while the block runs."""
        with self._lock:
            self._in_flight[shape] += 1
            count = self._in_flight[shape]
        try:
            yield count
        finally:
            with self._lock:
                self._in_flight[shape] -= 1
                if not self._in_flight[shape]:
                    del self._in_flight[shape]

    def _learned(self, request: SandboxRequest) -> Learned | None:
        """What the request's tenant's earlier runs taught (for its spare)."""
        with self._lock:
            return self._taught.get(request.tenant) if request.tenant else None

    def _learn(self, request: SandboxRequest, envelope: dict[str, Any]) -> Learned | None:
        """Remember what a tenant's run imported and whether its connector defines warm_up;
        return it when that is new. Forget it all when a run's process failed (a module or a
        warm-up that breaks a spare must not break every later run)."""
        if not request.tenant:
            return None
        error = envelope.get("error") or {}
        with self._lock:
            known = self._taught.pop(request.tenant, Learned())
            if error.get("type") in (ErrorType.PROCESS_EXIT, ErrorType.SANDBOX_ERROR):
                return None
            new = [name for name in envelope.get("imported") or () if name not in known.modules]
            digest, warm_up = known.preload_digest, envelope.get("warm_up")
            this_code = preload_digest(request.code, request.library_code or "")
            if warm_up:
                digest = this_code
            elif digest == this_code:
                digest = ""  # this code no longer defines warm_up (or its run failed before)
            learned = Learned((*known.modules, *new)[:MAX_MODULES], digest)
            self._taught[request.tenant] = learned
            while len(self._taught) > MAX_TENANTS:
                self._taught.popitem(last=False)
            # A run that warmed up itself found no spare of its shape with its code: the fork
            # server cannot make one without the code, so ask for it.
            changed = new or digest != known.preload_digest or warm_up == "warmed up"
            return learned if changed else None

    def stop(self) -> None:
        """Stop the fork server (a later request starts a new one)."""
        with self._lock:
            forkserver, self._forkserver = self._forkserver, None
        if forkserver is not None:
            forkserver.stop()

    def _current_forkserver(self) -> _ForkServer:
        """Return the running fork server, starting one when there is none or it died."""
        with self._lock:
            if self._forkserver is not None and not self._forkserver.alive():
                self._forkserver.stop()
                self._forkserver = None
            if self._forkserver is None:
                prefix = (
                    bwrap_prefix(
                        self._bwrap, self.hidden_paths, self.python_paths, self.readable_paths
                    )
                    if self.use_bwrap
                    else []
                )
                paths = sandbox_python_paths(self.python_paths, self.use_bwrap)
                self._forkserver = _ForkServer(prefix, self.hidden_paths, self.isolation, paths)
            return self._forkserver

    def _discard(self, forkserver: _ForkServer) -> None:
        """Stop a fork server that failed a request, unless another thread already replaced it."""
        with self._lock:
            if self._forkserver is forkserver:
                self._forkserver = None
        forkserver.stop()

    @staticmethod
    def _result(
        request: SandboxRequest, envelope: dict[str, Any], table: bytes, started: float
    ) -> SandboxResult:
        """Build the SandboxResult from the supervisor's (already masked) reply."""
        return SandboxResult(
            ok=bool(envelope.get("ok")),
            action=request.action,
            result=envelope.get("result"),
            logs=envelope.get("logs") or "",
            error=envelope.get("error"),
            duration_ms=_elapsed_ms(started),
            isolation=envelope.get("isolation") or "",
            table=table or None,
            timings={**(envelope.get("timings") or {}), "round_trip_ms": _elapsed_ms(started)},
            imported=list(envelope.get("imported") or []),
        )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


_live_sandboxes: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def run_action(
    request: SandboxRequest,
    *,
    sandbox: Sandbox,
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run one action of a connector in `sandbox` and return its masked result.

    Setting `cancel` (from any thread) kills the request's processes at once and makes this
    return a result with error type "Cancelled".
    """
    return sandbox.run(request, cancel=cancel)


@atexit.register
def _stop_all_sandboxes() -> None:
    """Leave no fork server behind when the server process exits."""
    for sandbox in list(_live_sandboxes):
        sandbox.stop()
