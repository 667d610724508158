"""Spare supervisors: prepared ahead of a request, the modules a tenant's runs imported imported
ahead for that tenant only, the reply's timings."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connector_engine.protocol import Limits, SandboxRequest
from connector_engine.sandbox import Sandbox, run_action
from tests.engine.sandbox.test_sandbox import BWRAP_MODES, wait_for_no_leftovers

# A package only this sandbox's environment has; the reader says whether it was already
# imported when the run began, then imports it (as any connector would).
PACKAGE = """
import time
IMPORTED_AT = time.time()
"""
CONNECTOR = """
import sys
import pandas as pd

def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    loaded = "bench_heavy_module" in sys.modules
    import bench_heavy_module
    return pd.DataFrame({"loaded": [loaded]})
"""
SPARE_READY_S = 1.0  # ample time for the spare that replaces the one just used


@pytest.fixture(scope="module")
def packages() -> Iterator[Path]:
    """A package environment's folder; readable by the uid user code runs as (pytest's own
    temporary folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="cs-test-environment-", dir="/var/tmp"))
    folder.chmod(0o755)
    (folder / "bench_heavy_module.py").write_text(PACKAGE)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module", params=BWRAP_MODES)
def sandbox(request, packages: Path) -> Iterator[Sandbox]:
    box = Sandbox(use_bwrap=request.param, python_paths=[str(packages)])
    yield box
    box.stop()
    assert wait_for_no_leftovers(allow_forkserver=False) == []


LIMITS = Limits(timeout_s=20, memory_mb=512)


def loaded_before_the_run(sandbox: Sandbox, tenant: str) -> bool:
    request = SandboxRequest(action="read", code=CONNECTOR, tenant=tenant, limits=LIMITS)
    result = run_action(request, sandbox=sandbox)
    assert result.ok, result.error
    time.sleep(SPARE_READY_S)
    return result.result["rows"] == [[True]]


def test_a_tenants_modules_are_imported_before_its_next_run(sandbox: Sandbox) -> None:
    # The first run imports the module itself and teaches the sandbox; the second finds it
    # imported by a spare prepared for this tenant; every later one too.
    assert [loaded_before_the_run(sandbox, "connection-1") for _ in range(3)] == [
        False,
        True,
        True,
    ]


def test_another_tenant_never_gets_them(sandbox: Sandbox) -> None:
    loaded_before_the_run(sandbox, "connection-1")
    assert not loaded_before_the_run(sandbox, "connection-2")
    assert not loaded_before_the_run(sandbox, "")  # no tenant: nothing is learned


def test_a_process_that_died_makes_the_sandbox_forget_them(sandbox: Sandbox) -> None:
    loaded_before_the_run(sandbox, "connection-3")
    assert loaded_before_the_run(sandbox, "connection-3")
    dying = CONNECTOR.replace("    loaded =", "    import os; os._exit(3)\n    loaded =")
    request = SandboxRequest(action="read", code=dying, tenant="connection-3")
    assert run_action(request, sandbox=sandbox).error["type"] == "ProcessExit"
    time.sleep(SPARE_READY_S)
    assert not loaded_before_the_run(sandbox, "connection-3")


def test_requests_that_come_together_each_find_a_spare(sandbox: Sandbox) -> None:
    # An ingest reads with two requests at once: the first pair shows the fork server that this
    # shape's requests come together (one finds no spare), and from then on it keeps two.
    loaded_before_the_run(sandbox, "connection-6")

    def read() -> bool:
        request = SandboxRequest(
            action="read", code=CONNECTOR, tenant="connection-6", limits=LIMITS
        )
        result = run_action(request, sandbox=sandbox)
        assert result.ok, result.error
        return result.result["rows"] == [[True]]

    def together() -> list[bool]:
        with ThreadPoolExecutor(2) as pool:
            return sorted(pool.map(lambda _: read(), range(2)))

    assert together() == [False, True]
    time.sleep(2 * SPARE_READY_S)
    assert together() == [True, True]


def test_the_reply_says_where_the_time_went(sandbox: Sandbox) -> None:
    request = SandboxRequest(action="read", code=CONNECTOR, tenant="connection-4")
    result = run_action(request, sandbox=sandbox)
    assert result.ok, result.error
    phases = ("namespaces_ms", "fork_ms", "execute_ms", "connector_ms", "round_trip_ms")
    assert all(result.timings[phase] >= 0 for phase in phases), result.timings
    assert result.timings["execute_ms"] <= result.timings["connector_ms"]
    assert result.timings["connector_ms"] <= result.timings["round_trip_ms"]
    assert "bench_heavy_module" in result.imported or loaded_before_the_run(sandbox, "connection-4")


def test_an_environment_without_the_module_is_unaffected() -> None:
    # A learned module another environment does not have fails to import ahead, quietly: the
    # run reports its own ImportError, as it would have anyway.
    box = Sandbox(use_bwrap=False)
    try:
        request = SandboxRequest(action="read", code=CONNECTOR, tenant="connection-5")
        result = run_action(request, sandbox=box)
        assert result.error["type"] == "ModuleNotFoundError"
    finally:
        box.stop()
