"""warm_up(): a connection's spare executes its connector and runs warm_up() ahead of the next
request with exactly that code, for that connection only; a broken or stuck warm-up never
breaks or blocks a run."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector_engine.protocol import Limits, SandboxRequest, SandboxResult
from connector_engine.sandbox import Sandbox, run_action
from tests.engine.sandbox.test_sandbox import BWRAP_MODES, leftover_processes

# The reader reports how long before context() the warm-up ran: about nothing when the run
# warmed up itself, the time since the spare was prepared when the spare did.
CONNECTOR = """
import time
import pandas as pd

print("module executed")
STATE = {}

def warm_up():
    print("warmed up")
    STATE["warmed_at"] = time.monotonic()

def context(credentials):
    return {"gap": time.monotonic() - STATE["warmed_at"], "credentials": credentials[::-1]}

def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"gap": [context["gap"]], "credentials": [context["credentials"]]})
"""
SPARE_READY_S = 1.0  # ample time for the spare that preloads after a run
PRELOADED_GAP_S = 0.5  # a warm-up this long before context() ran in a spare

# A module that never finishes importing ahead: only a connector's run (with the connector's
# module loaded) gets past it.
STUCK_MODULE = """
import sys
import time
if "connector" not in sys.modules:
    time.sleep(60)
"""


def gap_of(sandbox: Sandbox, tenant: str, code: str = CONNECTOR, credentials: str = "") -> float:
    result = read(sandbox, tenant, code, credentials)
    assert result.ok, result.error
    assert "module executed" in result.logs and "warmed up" in result.logs, result.logs
    time.sleep(SPARE_READY_S)
    return result.result["rows"][0][0]


def read(sandbox: Sandbox, tenant: str, code: str, credentials: str = "") -> SandboxResult:
    limits = Limits(timeout_s=20, memory_mb=512)
    request = SandboxRequest(
        action="read", code=code, tenant=tenant, limits=limits, credentials=credentials
    )
    return run_action(request, sandbox=sandbox)


@pytest.fixture(scope="module")
def packages() -> Iterator[Path]:
    """A package environment's folder readable by the uid user code runs as."""
    folder = Path(tempfile.mkdtemp(prefix="cs-test-environment-", dir="/var/tmp"))
    folder.chmod(0o755)
    (folder / "stuck_module.py").write_text(STUCK_MODULE)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module", params=BWRAP_MODES)
def sandbox(request, packages: Path) -> Iterator[Sandbox]:
    others = set(leftover_processes(allow_forkserver=False))  # other tests' sandboxes
    box = Sandbox(use_bwrap=request.param, python_paths=[str(packages)])
    yield box
    box.stop()
    deadline = time.monotonic() + 3
    while (left := set(leftover_processes(allow_forkserver=False)) - others) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert not left, sorted(left)  # this sandbox's fork server, spares and runs are gone


def test_the_next_run_of_the_same_code_finds_it_warmed_up(sandbox: Sandbox) -> None:
    gaps = [gap_of(sandbox, "connection-1", credentials=f"secret-{n}") for n in range(3)]
    assert gaps[0] < PRELOADED_GAP_S < min(gaps[1:]), gaps


def test_the_run_gets_its_own_credentials_not_the_preloads(sandbox: Sandbox) -> None:
    gap_of(sandbox, "connection-2", credentials="first")
    result = read(sandbox, "connection-2", CONNECTOR, credentials="second")
    assert result.result["rows"][0][0] > PRELOADED_GAP_S
    assert result.result["rows"][0][1] == "dnoces"  # reversed: the credentials are masked


def test_changed_code_is_loaded_afresh(sandbox: Sandbox) -> None:
    gap_of(sandbox, "connection-3")
    assert gap_of(sandbox, "connection-3") > PRELOADED_GAP_S
    assert gap_of(sandbox, "connection-3", CONNECTOR + "\n# edited\n") < PRELOADED_GAP_S


def test_another_tenant_never_gets_the_preload(sandbox: Sandbox) -> None:
    gap_of(sandbox, "connection-4")
    assert gap_of(sandbox, "connection-4") > PRELOADED_GAP_S
    assert gap_of(sandbox, "connection-5") < PRELOADED_GAP_S


def test_a_failing_warm_up_is_the_runs_error_every_time(sandbox: Sandbox) -> None:
    failing = CONNECTOR.replace('    print("warmed up")', '    raise ValueError("no warm-up")')
    for _ in range(3):
        result = read(sandbox, "connection-6", failing)
        assert result.error["type"] == "ValueError", result.error
        assert result.error["function"] == "warm_up"
        time.sleep(SPARE_READY_S)


def test_a_spare_stuck_importing_ahead_cannot_block_a_large_request(sandbox: Sandbox) -> None:
    # The request is larger than a pipe holds: the supervisor writes it as the connector
    # process reads, within the run's deadline, and the run times out instead of hanging.
    code = "import stuck_module\n" + CONNECTOR + "#" * 200_000 + "\n"
    assert read(sandbox, "connection-7", code).ok
    time.sleep(SPARE_READY_S)
    limits = Limits(timeout_s=3, memory_mb=512)
    request = SandboxRequest(action="read", code=code, tenant="connection-7", limits=limits)
    started = time.monotonic()
    result = run_action(request, sandbox=sandbox)
    assert result.error["type"] == "Timeout", result.error
    assert time.monotonic() - started < 10
