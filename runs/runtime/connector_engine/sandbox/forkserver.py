"""The warm fork server: preload pandas/pyarrow once, then serve each request in a supervisor.

Started by `Sandbox` (connector_engine.sandbox.client) as `python -m
connector_engine.sandbox.forkserver` with a cleared environment (under bubblewrap when
available). It accepts connections on a listening Unix socket it inherited and exits when the
lifeline pipe from its client closes.

Each connection starts with the request's shape (network, /tmp size;
connector_engine.sandbox.shape.Shape). For each shape it has seen recently the
fork server keeps a spare supervisor forked ahead of time: its namespaces entered and its
connector process forked and warmed up, waiting. A request of that shape is handed to the spare
(its connection passed with SCM_RIGHTS), and a new spare is forked for the next one when the
fork server has been quiet for a moment, so the forks, the namespaces and the copying of pages
are not paid while a user waits. A request with
no spare of its shape (or whose spare died) gets a supervisor forked for it, as requests run
concurrently. A shape whose requests come together (the client says so: it sends one while
another runs, as an ingest's reads) gets MAX_DEPTH spares from then on, forked once that burst's
requests have ended, so the next burst finds them ready; MAX_SPARES in all.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
import time
from collections import OrderedDict
from functools import partial

from connector_engine.sandbox import namespaces
from connector_engine.sandbox.connector_process import warm_up
from connector_engine.sandbox.shape import HEADER_SIZE, MAX_SHAPE_BYTES, Shape
from connector_engine.sandbox.supervisor import serve_connection, serve_when_handed
from connector_engine.system import linux

MAX_SPARES = 6  # spare supervisors kept in all, for the most recently used shapes
MAX_DEPTH = 4  # spares kept for a shape whose requests come together (an ingest's reads)
SPARE_IDLE_S = 300.0  # a tenant's spare (its modules imported) is stopped after this idle time
IDLE_CHECK_S = 30
REFILL_DELAY_MS = 20  # how long the fork server waits for quiet before forking spares
MAX_REFILL_WAIT_S = 2.0  # spares wait for the running requests to end, but not longer
SHAPE_TIMEOUT_S = 5.0  # the client sends the shape at once; never wait longer for it


def preload() -> None:
    """Import and warm up the heavy libraries so every forked request starts with them."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.ipc

    from connector_engine import tabular

    table = pa.Table.from_pandas(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), preserve_index=False)
    pc.replace_substring(table.column("b"), pattern="x", replacement="*")
    tabular.json_rows(table)
    # Lazy imports and caches filled once here, not in every forked request.
    warm_up()
    # What every request's namespaces need from this view, worked out once, not per request.
    namespaces.interpreter_reachable_by_others()
    namespaces.paths_user_code_needs()


class ForkServer:
    """Accept connections and serve each in a spare or a freshly forked supervisor."""

    def __init__(self, listen_fd: int, lifeline_fd: int, hidden_paths: list[str], isolation: str):
        self.listener = socket.socket(fileno=listen_fd)
        self.lifeline_fd = lifeline_fd
        self.hidden_paths = hidden_paths
        self.isolation = isolation
        self.pid = os.getpid()
        # shape: its spares, each with its own shape (a preload's code included), channel, pid
        self.spares: OrderedDict[Shape, list[tuple[Shape, socket.socket, int]]] = OrderedDict()
        self.used: dict[Shape, float] = {}  # when a tenant's spare was last asked for
        self.depth: dict[Shape, int] = {}  # spares to keep of a shape (1 unless used at once)
        self.busy: set[int] = set()  # pidfds of the supervisors serving a request now

    def serve(self) -> None:
        """Accept connections until the lifeline closes."""
        # Supervisors are reaped by the kernel; they reset this before forking their own child.
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        poller = select.poll()
        poller.register(self.listener.fileno(), select.POLLIN)
        poller.register(self.lifeline_fd, select.POLLIN)
        self.add_spare(Shape())
        refill: list[Shape] = []  # shapes whose spare was handed over, to replace when idle
        refill_since = 0.0
        while True:
            wait_ms = REFILL_DELAY_MS if refill else IDLE_CHECK_S * 1000
            events = dict(poller.poll(wait_ms))
            if self.lifeline_fd in events:
                return  # the client process is gone (or stopped us)
            for fd in [fd for fd in events if fd in self.busy]:  # a supervisor ended
                poller.unregister(fd)
                os.close(fd)
                self.busy.discard(fd)
            if not events:
                # Quiet for a moment: the request just handed over is probably done, and the
                # replacements' forks and warm-ups no longer compete with it for the CPU. The
                # spares of a shape used in bursts wait for the burst's requests to end.
                waited = time.monotonic() - refill_since > MAX_REFILL_WAIT_S
                for shape in list(refill):
                    if self.depth.get(shape, 1) == 1 or not self.busy or waited:
                        self.add_spare(shape)
                        refill.remove(shape)
                self.drop_idle_spares()
                continue
            if self.listener.fileno() not in events:
                continue
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            with conn:
                shape, prepare_only, together = self.read_shape(conn)
                if shape is None:
                    continue
                if prepare_only:
                    self.add_spare(shape)
                    continue
                if together:  # the client runs several at once: e.g. an ingest's reads
                    self.depth[shape] = MAX_DEPTH
                served = self.hand_to_spare(shape, conn)
                if served is None and shape.preload_digest:  # the modules-only spare, then
                    shape = shape.without_preload()
                    served = self.hand_to_spare(shape, conn)
                if served is None:
                    pid = self.fork(partial(serve_connection, conn.fileno(), *self.config, shape))
                    served = (shape, pid)
                self.watch_busy(served[1], poller)
                if not refill:
                    refill_since = time.monotonic()
                if served[0] not in refill and (served[0].code or not served[0].preload_digest):
                    refill.append(served[0])

    def watch_busy(self, pid: int, poller: select.poll) -> None:
        """Count a supervisor that serves a request as busy until it exits."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # already gone
            return
        self.busy.add(pidfd)
        poller.register(pidfd, select.POLLIN)

    @property
    def config(self) -> tuple[list[str], str]:
        return self.hidden_paths, self.isolation

    @staticmethod
    def read_shape(conn: socket.socket) -> tuple[Shape | None, bool, bool]:
        """The shape the client sends first (None for a client that sends none in time),
        whether it only asks for a spare of that shape, and whether the client is running
        another request of it."""
        conn.settimeout(SHAPE_TIMEOUT_S)
        try:
            header = conn.recv(HEADER_SIZE, socket.MSG_WAITALL)
            if len(header) != HEADER_SIZE or Shape.body_size(header) > MAX_SHAPE_BYTES:
                return None, False, False
            size = Shape.body_size(header)
            body = conn.recv(size, socket.MSG_WAITALL)
            if len(body) != size:
                return None, False, False
            shape, prepare_only, together = Shape.unpack(body)
        except (OSError, ValueError, TypeError):
            return None, False, False
        conn.settimeout(None)  # blocking again: the supervisor reads it with os.read
        return shape, prepare_only, together

    def drop_idle_spares(self) -> None:
        """Stop the spares of tenants that sent no request for SPARE_IDLE_S: what their modules
        hold in memory is given back."""
        now = time.monotonic()
        for shape in [shape for shape, used in self.used.items() if now - used > SPARE_IDLE_S]:
            del self.used[shape]
            self.depth.pop(shape, None)
            for _, channel, _ in self.spares.pop(shape, ()):
                channel.close()

    def hand_to_spare(self, shape: Shape, conn: socket.socket) -> tuple[Shape, int] | None:
        """Pass the connection to a spare of its shape and return the spare's shape (with the
        code it preloaded) and pid; None when there is none (or it died)."""
        if shape.tenant:
            self.used[shape] = time.monotonic()
        spares = self.spares.get(shape) or []
        while spares:
            own_shape, channel, pid = spares.pop(0)
            with channel:
                try:
                    socket.send_fds(channel, [b"c"], [conn.fileno()])
                except OSError:
                    continue  # that spare died: the next one
            return own_shape, pid
        return None

    def add_spare(self, shape: Shape) -> None:
        """Fork spare supervisors for `shape` up to its depth (stopping the least recently used
        shapes' spares to stay within MAX_SPARES)."""
        if shape.preload_digest and not shape.code:
            return  # only a shape that brings its code can have a spare preload it
        if shape.tenant:
            self.used.setdefault(shape, time.monotonic())  # idle from now until it is used
        spares = self.spares.setdefault(shape, [])
        self.spares.move_to_end(shape)
        while len(spares) < self.depth.get(shape, 1):
            while sum(map(len, self.spares.values())) >= MAX_SPARES:
                old = next(iter(self.spares))
                if old == shape:
                    return
                self.used.pop(old, None)
                for _, channel, _ in self.spares.pop(old):
                    channel.close()  # the spare sees the channel close and exits
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            serve = partial(serve_when_handed, theirs.fileno(), *self.config, shape)
            pid = self.fork(serve, closing=(ours,))
            theirs.close()
            spares.append((shape, ours, pid))

    def fork(self, serve, closing: tuple[socket.socket, ...] = ()) -> int:
        """Run `serve` (which never returns) in a forked supervisor; return its pid."""
        pid = os.fork()
        if pid != 0:
            return pid
        try:
            self.listener.close()
            os.close(self.lifeline_fd)
            for fd in self.busy:
                os.close(fd)
            for spares in self.spares.values():
                for _, channel, _ in spares:
                    channel.close()
            for channel in closing:
                channel.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != self.pid:
                os._exit(1)  # the fork server died before the death signal was armed
            serve()
        finally:
            os._exit(1)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments the Sandbox passes, preload, and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--lifeline-fd", type=int, required=True)
    parser.add_argument(
        "--config", required=True, help="JSON: hidden_paths, isolation, python_paths"
    )
    args = parser.parse_args(argv)
    config = json.loads(args.config)
    # A package environment goes after the standard library and the base packages: it adds
    # modules, it never replaces the ones the fork server and the supervisor rely on.
    sys.path.extend(config.get("python_paths") or ())
    linux.set_process_name("cs-forkserver")
    # No process (user code included) may read this process's or its forks' memory via /proc.
    linux.prctl(linux.PR_SET_DUMPABLE, 0)
    try:
        preload()
    except Exception as exc:  # still serve: each request then reports the engine's failure
        print(f"fork server: preload failed: {exc!r}", file=sys.stderr, flush=True)
    # What is loaded now is shared with every fork: keep the collector from walking (and so
    # copying) it in each one.
    gc.collect()
    gc.freeze()
    server = ForkServer(
        args.listen_fd,
        args.lifeline_fd,
        list(config["hidden_paths"]),
        config["isolation"],
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()


if __name__ == "__main__":
    main()
