"""A bad reply fails only its request: one user's oversized result never costs another's work.

The attack: a reader returns one list cell holding 90 MiB of control characters (small enough
for the connector's own result), whose JSON preview rows are six times that (each character
escapes as \\u0001), while another user's slow listing runs in the same warm fork server. The
oversized reply must fail alone, with its size, and the listing succeed.
"""

from __future__ import annotations

import threading
import time

import pytest

from connector_engine.protocol import Limits, SandboxRequest, SandboxResult
from connector_engine.sandbox import Sandbox, run_action

ATTACK = """
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "big", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"cell": [["\\x01" * (90 * 1024 * 1024)]]})
"""

VICTIM = """
import time


def list_objects(context, metadata):
    time.sleep(SLEEP_S)
    yield {"name": "victim", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    raise NotImplementedError
"""


@pytest.fixture
def sandbox():
    sandbox = Sandbox()
    yield sandbox
    sandbox.stop()


def test_an_oversized_reply_fails_alone_and_the_fork_server_keeps_serving(sandbox):
    assert run_action(
        SandboxRequest(action="list", code=VICTIM.replace("SLEEP_S", "0")), sandbox=sandbox
    ).ok  # warm
    victim: list[SandboxResult] = []
    listing = SandboxRequest(
        action="list", code=VICTIM.replace("SLEEP_S", "12"), limits=Limits(timeout_s=60)
    )
    thread = threading.Thread(target=lambda: victim.append(run_action(listing, sandbox=sandbox)))
    thread.start()
    time.sleep(0.5)

    attack = run_action(
        # Memory enough to build the cell: the attack is on the reply, not the memory limit.
        SandboxRequest(action="read", code=ATTACK, limits=Limits(timeout_s=60, memory_mb=6144)),
        sandbox=sandbox,
    )
    thread.join(timeout=90)

    assert not attack.ok
    assert attack.error["type"] == "OutputTooLarge", attack.error
    assert "MB" in attack.error["message"]
    (listed,) = victim
    assert listed.ok, listed.error
    assert listed.result["leaf_count"] == 1
