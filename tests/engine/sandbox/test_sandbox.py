"""The sandbox end to end: real worker, real forks, real namespaces (no mocks, no database)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from connector_engine import IMPORT_ROOT
from connector_engine.protocol import Limits, SandboxRequest, SandboxResult
from connector_engine.sandbox import Sandbox, run_action
from connector_engine.sandbox.supervisor import SPARE_NAME

HAS_BWRAP = shutil.which("bwrap") is not None
# The long-lived processes that may stay between requests.
FORKSERVER_NAMES = {"bwrap", "cs-forkserver"}
SECRET_ENV_NAME = "CORPUS_SECRET_ENV"
SECRET_ENV_VALUE = "env-s3cret-7f3a9"

TRIVIAL = """
import pandas as pd

def context(credentials):
    return {"greeting": "hello"}

def list_objects(context, metadata):
    yield {"name": "orders.csv", "fingerprint": "v1"}

def read_pandas_dataframe(context, metadata):
    print("reading", metadata["name"])
    return pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})
"""

BWRAP_MODES = [
    pytest.param(True, id="bwrap", marks=pytest.mark.skipif(not HAS_BWRAP, reason="no bwrap")),
    pytest.param(False, id="no-bwrap"),
]


# --- process bookkeeping -------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, str, str]]:
    """Return pid -> (parent pid, comm, cmdline) for every process on the machine."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry)] = (ppid, comm, cmdline)
    return table


def descendants(root: int, table: dict[int, tuple[int, str, str]]) -> list[int]:
    """Return every process whose parent chain leads to root."""
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def sandbox_processes(table: dict[int, tuple[int, str, str]]) -> list[int]:
    """This test process's sandbox workers (bwrap or not) and everything they started.

    Other children of the test process (a browser from the browser tests, the local Spark
    Connect server, which runs under bubblewrap too) do not count.
    """
    roots = [
        pid
        for pid, (ppid, comm, cmdline) in table.items()
        if ppid == os.getpid()
        and (comm == "bwrap" or "connector_engine.sandbox.forkserver" in cmdline)
        and "start-connect-server.sh" not in cmdline
    ]
    return roots + [pid for root in roots for pid in descendants(root, table)]


def leftover_processes(allow_forkserver: bool = True) -> list[str]:
    """Describe processes started for requests that are still alive (none is the goal)."""
    table = process_table()
    mine = sandbox_processes(table)
    # The fork server keeps spare supervisors (and their waiting connector processes) warm.
    spares = [pid for pid in mine if table[pid][1] == SPARE_NAME]
    warm = {*spares, *(pid for spare in spares for pid in descendants(spare, table))}
    left = [
        pid
        for pid in mine
        if not (allow_forkserver and (table[pid][1] in FORKSERVER_NAMES or pid in warm))
    ]
    # Workers orphaned by a crash of ours would hang below init: look for our socket dir too.
    ours = f"connector-sandbox-{os.getpid()}-"
    left += [pid for pid, row in table.items() if ours in row[2] and not allow_forkserver]
    return [f"{pid} {table[pid][1]} {table[pid][2][:80]}" for pid in sorted(set(left))]


def wait_for_no_leftovers(allow_forkserver: bool = True, within_s: float = 3.0) -> list[str]:
    """Poll until no request process is left (supervisors exit just after replying)."""
    deadline = time.monotonic() + within_s
    while True:
        left = leftover_processes(allow_forkserver)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def processes_with_cmdline(fragment: str) -> list[int]:
    """Return the pids whose command line contains the fragment."""
    return [pid for pid, row in process_table().items() if fragment in row[2]]


def table_of(result: SandboxResult) -> pa.Table:
    """Decode the Arrow IPC bytes of a result."""
    assert result.table is not None
    return pa.ipc.open_stream(io.BytesIO(result.table)).read_all()


def request(code: str, action: str = "read", **kwargs) -> SandboxRequest:
    """Build a request with small limits so failures are fast."""
    limits = kwargs.pop("limits", Limits(timeout_s=10, memory_mb=512))
    return SandboxRequest(action=action, code=code, limits=limits, **kwargs)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BWRAP_MODES)
def sandbox(request, hidden_dir) -> Iterator[Sandbox]:
    """A sandbox per isolation mode, started with a secret in the test process's environment."""
    os.environ[SECRET_ENV_NAME] = SECRET_ENV_VALUE
    box = Sandbox(hidden_paths=[hidden_dir], use_bwrap=request.param)
    yield box
    box.stop()
    assert wait_for_no_leftovers(allow_forkserver=False) == []


@pytest.fixture(autouse=True)
def no_leftover_request_processes() -> Iterator[None]:
    """After every test, nothing started for a request may still be running."""
    yield
    assert wait_for_no_leftovers() == []


# --- tests ---------------------------------------------------------------------------------


def test_trivial_connector_previews_every_action(sandbox: Sandbox) -> None:
    context = run_action(request(TRIVIAL, "context"), sandbox=sandbox)
    listing = run_action(request(TRIVIAL, "list"), sandbox=sandbox)
    read = run_action(request(TRIVIAL, "read"), sandbox=sandbox)

    assert context.ok and listing.ok and read.ok, (context.error, listing.error, read.error)
    assert [item["name"] for item in listing.result["objects"]] == ["orders.csv"]
    assert read.result["rows"] == [[1, "a"], [2, "b"], [3, "c"]]
    assert read.logs == "reading orders.csv\n"
    assert table_of(read).column("name").to_pylist() == ["a", "b", "c"]
    if sandbox.use_bwrap:
        assert read.isolation.startswith("bubblewrap")
    else:
        assert read.isolation.startswith("reduced isolation: bubblewrap disabled")


def test_concurrent_requests_run_in_parallel(sandbox: Sandbox) -> None:
    code = TRIVIAL.replace('print("reading"', 'import time; time.sleep(1.0); print("reading"')
    run_action(request(TRIVIAL), sandbox=sandbox)  # warm the worker first
    results: list[SandboxResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(run_action(request(code), sandbox=sandbox)))
        for _ in range(4)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert [result.ok for result in results] == [True] * 4
    assert elapsed < 3.0  # four 1 s sleeps would take 4 s one after another


def test_next_request_works_after_the_fork_server_is_killed(sandbox: Sandbox) -> None:
    assert run_action(request(TRIVIAL), sandbox=sandbox).ok
    table = process_table()
    workers = [pid for pid in descendants(os.getpid(), table) if table[pid][1] == "cs-forkserver"]
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)

    result = run_action(request(TRIVIAL), sandbox=sandbox)

    assert result.ok, result.error


def test_timeout_kills_grandchildren_that_left_the_session(sandbox: Sandbox) -> None:
    code = """
import os, subprocess, time

def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    subprocess.Popen(["sleep", "313.25"], start_new_session=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "313.5"])
        os._exit(0)
    print("spawned", flush=True)
    time.sleep(60)
"""
    result = run_action(request(code, limits=Limits(timeout_s=2)), sandbox=sandbox)

    assert result.error["type"] == "Timeout"
    assert "longer than 2 s" in result.error["message"]
    assert result.logs == "spawned\n"
    assert processes_with_cmdline("sleep 313.") == []


def test_output_is_capped_with_a_marker(sandbox: Sandbox) -> None:
    code = TRIVIAL.replace('print("reading", metadata["name"])', 'print("y" * 3_000_000)')
    limits = Limits(timeout_s=10, max_output_bytes=10_000)

    result = run_action(request(code, limits=limits), sandbox=sandbox)

    assert result.ok
    assert result.logs.startswith("y" * 10_000)
    assert result.logs.endswith("\n[output cut: 3.0 MB more not shown]")


def test_secrets_are_masked_in_logs_result_error_and_table(sandbox: Sandbox) -> None:
    secret = "tok-SECRET-4242"
    credentials = f'{{"token": "{secret}", "region": "eu"}}'
    code = """
import json
import pandas as pd

def context(credentials):
    print("credentials:", credentials)
    return json.loads(credentials)

def list_objects(context, metadata):
    yield {"name": "part-" + context["token"], "fingerprint": context["token"]}

def read_pandas_dataframe(context, metadata):
    print("token", context["token"])
    if metadata.get("fail"):
        raise RuntimeError("bad token " + context["token"])
    return pd.DataFrame({"token": [context["token"], "x"], context["token"]: [1, 2]})
"""
    read = run_action(request(code, credentials=credentials), sandbox=sandbox)
    listing = run_action(request(code, "list", credentials=credentials), sandbox=sandbox)
    failed = run_action(
        request(code, credentials=credentials, object={"name": "x", "fingerprint": "1", "fail": 1}),
        sandbox=sandbox,
    )

    assert read.ok and listing.ok, (read.error, listing.error)
    assert failed.error["type"] == "RuntimeError"
    assert failed.error["message"] == "bad token ****"
    for result in (read, listing, failed):
        assert secret not in repr(result.to_json())
        assert "****" in result.logs
    table = table_of(read)
    assert table.column("token").to_pylist() == ["****", "x"]
    assert table.column_names == ["token", "****"]
    assert secret.encode() not in read.table
    assert read.result["rows"][0][0] == "****"


def test_connector_cannot_see_hidden_files_or_server_environment(
    sandbox: Sandbox, hidden_dir: str
) -> None:
    code = f"""
import glob, os
import pandas as pd

def list_objects(context, metadata):
    yield {{"name": "a", "fingerprint": "1"}}

HIDDEN = {hidden_dir!r}

def read_pandas_dataframe(context, metadata):
    environ = []
    for path in glob.glob("/proc/*/environ"):
        try:
            environ.append(open(path, "rb").read().decode(errors="replace"))
        except OSError:
            pass
    print(sorted(os.environ))
    return pd.DataFrame({{
        "hidden": [repr(os.listdir(HIDDEN)) if os.path.exists(HIDDEN) else "absent"],
        "environ": [repr(dict(os.environ))],
        "others": ["\\n".join(environ)],
    }})
"""
    result = run_action(request(code), sandbox=sandbox)

    assert result.ok, result.error
    # Under bubblewrap the folder is not in the view at all; without, it is covered.
    assert result.result["rows"][0][0] == ("absent" if sandbox.use_bwrap else "[]")
    assert SECRET_ENV_VALUE not in repr(result.to_json())
    assert SECRET_ENV_VALUE.encode() not in result.table
    assert set(eval(result.logs)) <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE"}


@pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed")
def test_connector_cannot_write_outside_tmp_under_bwrap() -> None:
    target = Path(IMPORT_ROOT, ".sandbox-write-probe")
    code = f"""
import pandas as pd

def list_objects(context, metadata):
    yield {{"name": "a", "fingerprint": "1"}}

def read_pandas_dataframe(context, metadata):
    with open("/tmp/fine.txt", "w") as handle:
        handle.write("scratch space works")
    with open({str(target)!r}, "w") as handle:
        handle.write("escaped")
"""
    box = Sandbox(use_bwrap=True)
    try:
        result = run_action(request(code), sandbox=box)
    finally:
        box.stop()

    assert result.error["type"] == "OSError"
    assert "Read-only file system" in result.error["message"]
    assert not target.exists()


def test_stop_leaves_no_process_behind() -> None:
    box = Sandbox(use_bwrap=HAS_BWRAP)
    assert run_action(request(TRIVIAL), sandbox=box).ok
    worker = box._forkserver.process.pid
    started = {worker, *descendants(worker, process_table())}
    assert len(started) >= 1

    box.stop()

    deadline = time.monotonic() + 3
    while started & set(process_table()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started & set(process_table()) == set()
