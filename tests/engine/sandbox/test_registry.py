"""The sandbox registry (Django-free): an environment's warm fork server sees its packages, not the
hidden data; idle ones stop."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time

import pytest

from connector_engine.environments.spec import PackageFileRef, environment_spec
from connector_engine.environments.store import EnvironmentStore
from connector_engine.protocol import SandboxRequest
from connector_engine.sandbox import run_action
from connector_engine.sandbox.registry import EnvironmentNotVisible, SandboxRegistry
from tests.environments.helpers import wheel_bytes, wheel_name

PROBE = """
import os
import pandas as pd
import tinypkg

HIDDEN = HIDDEN_DIR

def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "v1"}

def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"value": [tinypkg.VALUE], "hidden": [repr(sorted(os.listdir(HIDDEN)))]})
"""


@pytest.fixture
def hidden_store():
    """A store inside a directory the sandbox hides (like DATA_DIR), with one built env."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    hidden = tempfile.mkdtemp(prefix="cs-env-hidden-", dir=base)
    wheel = os.path.join(hidden, wheel_name())
    with open(wheel, "wb") as handle:
        handle.write(wheel_bytes())
    digest = hashlib.sha256(wheel_bytes()).hexdigest()
    store = EnvironmentStore(
        os.path.join(hidden, "environments"),
        pip_args=["--isolated", "--no-index"],
        hidden_paths=[hidden],
    )
    spec = environment_spec(["tinypkg"], [PackageFileRef(wheel_name(), digest, wheel)])
    outcome = store.ensure(spec)
    assert outcome.ok, outcome.log
    yield hidden, outcome.ready
    shutil.rmtree(hidden, ignore_errors=True)


needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="mounting a hidden environment needs bubblewrap"
)


@needs_bwrap
def test_the_worker_imports_the_environment_and_still_hides_the_data(hidden_store):
    hidden, ready = hidden_store
    # Even a folder the operator lets connector code read stays covered where it is hidden.
    pool = SandboxRegistry(hidden_paths=[hidden], readable_paths=[hidden])
    try:
        with pool.lease(ready) as sandbox:
            code = PROBE.replace("HIDDEN_DIR", repr(hidden))
            result = run_action(SandboxRequest(action="read", code=code), sandbox=sandbox)
        assert result.ok, result.error
        assert result.result["rows"] == [["tinypkg 0.1", "[]"]]
        assert pool.running() == [ready.key]
    finally:
        pool.stop()


@needs_bwrap
def test_an_idle_worker_is_stopped_and_a_busy_one_kept(hidden_store):
    hidden, ready = hidden_store
    pool = SandboxRegistry(hidden_paths=[hidden], idle_s=0.2)
    try:
        with pool.lease(ready) as sandbox:
            request = SandboxRequest(action="list", code=PROBE.replace("HIDDEN_DIR", "'/'"))
            assert run_action(request, sandbox=sandbox).ok
            assert pool.reap(now=time.monotonic() + 60) == 0  # in use: kept
        deadline = time.monotonic() + 5
        while pool.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.running() == []  # the reaper stopped it
    finally:
        pool.stop()


def test_without_bubblewrap_a_hidden_environment_is_refused_clearly(hidden_store):
    hidden, ready = hidden_store
    pool = SandboxRegistry(hidden_paths=[hidden], use_bwrap=False)
    with pytest.raises(EnvironmentNotVisible, match="ENVIRONMENTS_DIR"), pool.lease(ready):
        pass
    assert pool.running() == []
