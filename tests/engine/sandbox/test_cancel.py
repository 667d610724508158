"""Cancelling a sandbox request kills the connector and everything it started."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from connector_engine.protocol import Limits, SandboxRequest
from connector_engine.sandbox import Sandbox, run_action
from tests.processes import processes_with_argument, wait_for

SLOW_READER = """
import subprocess, time
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "slow", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    subprocess.Popen(["sleep", "MARKER"])
    time.sleep(120)
    return pd.DataFrame({"n": [1]})
"""


@pytest.fixture(scope="module")
def sandbox():
    sandbox = Sandbox()
    yield sandbox
    sandbox.stop()


def slow_request(marker: str) -> SandboxRequest:
    return SandboxRequest(
        action="read",
        code=SLOW_READER.replace("MARKER", marker),
        object={"name": "slow", "fingerprint": "v1"},
        full_table=True,
        limits=Limits(timeout_s=60),
    )


def test_it_kills_the_connector_and_its_children_on_cancel(sandbox):
    marker = f"{1000 + uuid.uuid4().int % 100000}.5"
    cancel = threading.Event()
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(
            result=run_action(slow_request(marker), sandbox=sandbox, cancel=cancel)
        )
    )
    thread.start()
    assert wait_for(lambda: processes_with_argument(marker)), "the child never started"
    started = time.monotonic()
    cancel.set()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
    result = outcome["result"]
    assert not result.ok
    assert result.error["type"] == "Cancelled"
    assert wait_for(lambda: not processes_with_argument(marker), timeout=5), "children survived"


def test_it_returns_at_once_when_cancelled_before_starting(sandbox):
    cancel = threading.Event()
    cancel.set()
    result = run_action(slow_request("1.25"), sandbox=sandbox, cancel=cancel)
    assert result.error["type"] == "Cancelled"
    assert result.duration_ms < 1000


def test_it_still_returns_results_when_a_cancel_event_is_never_set(sandbox):
    code = SLOW_READER.replace('subprocess.Popen(["sleep", "MARKER"])', "").replace(
        "time.sleep(120)", ""
    )
    request = SandboxRequest(action="read", code=code, full_table=True)
    result = run_action(request, sandbox=sandbox, cancel=threading.Event())
    assert result.ok, result.error
    assert result.table


def test_the_fork_server_keeps_serving_after_a_cancel(sandbox):
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    result = run_action(slow_request("2.75"), sandbox=sandbox, cancel=cancel)
    assert result.error["type"] == "Cancelled"
    worker_pid = sandbox._forkserver.process.pid
    ok = run_action(SandboxRequest(action="context", code=SLOW_READER), sandbox=sandbox)
    assert ok.ok
    assert sandbox._forkserver.process.pid == worker_pid
    assert os.path.exists(f"/proc/{worker_pid}")
