"""The warm fork server: preload pandas/pyarrow once, then fork one supervisor per request.

Started by `Sandbox` (connector_engine.sandbox.client) as `python -m
connector_engine.sandbox.forkserver` with a cleared environment (under bubblewrap when
available). It accepts connections on a listening Unix socket it inherited, forks a supervisor
per connection (so requests run concurrently) and exits when the lifeline pipe from its client
closes.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys

from connector_engine.sandbox import namespaces
from connector_engine.sandbox.supervisor import serve_connection
from connector_engine.system import linux


def preload() -> None:
    """Import and warm up the heavy libraries so every forked request starts with them."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.ipc

    from connector_engine import tabular
    from connector_engine.child import actions  # noqa: F401

    table = pa.Table.from_pandas(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), preserve_index=False)
    pc.replace_substring(table.column("b"), pattern="x", replacement="*")
    tabular.json_rows(table)
    # What every request's namespaces need from this view, worked out once, not per request.
    namespaces.interpreter_reachable_by_others()
    namespaces.paths_user_code_needs()


def serve(listen_fd: int, lifeline_fd: int, hidden_paths: list[str], isolation: str) -> None:
    """Accept connections until the lifeline closes; fork a supervisor for each."""
    listener = socket.socket(fileno=listen_fd)
    # Supervisors are reaped by the kernel; they reset this before forking their own child.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    poller = select.poll()
    poller.register(listener.fileno(), select.POLLIN)
    poller.register(lifeline_fd, select.POLLIN)
    forkserver_pid = os.getpid()
    while True:
        events = dict(poller.poll())
        if lifeline_fd in events:
            return  # the client process is gone (or stopped us)
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.close(lifeline_fd)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != forkserver_pid:
                os._exit(1)  # the fork server died before the death signal was armed
            serve_connection(conn.detach(), hidden_paths, isolation)
        conn.close()


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
    serve(args.listen_fd, args.lifeline_fd, list(config["hidden_paths"]), config["isolation"])


if __name__ == "__main__":
    main()
