"""Connector code never runs with uid 0 or any capability on host files, whatever user the app
runs as: a root-only file stays unreadable even where the view shows it."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from connector_engine.protocol import SandboxRequest
from connector_engine.sandbox import Sandbox, run_action

PROBE = """
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "probe", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    found = []
    for path in TARGETS:
        try:
            with open(path) as handle:
                found.append(handle.read()[:20])
        except OSError as exc:
            found.append(type(exc).__name__)
    return pd.DataFrame({"found": found})
"""

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the app runs as root here"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
]


def test_connector_code_reads_no_root_only_file():
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    private = tempfile.mkdtemp(prefix="cs-root-only-", dir=base)
    os.chmod(private, 0o755)
    secret = os.path.join(private, "root-only.txt")
    with open(secret, "w") as handle:
        handle.write("ROOT-ONLY-SECRET")
    os.chmod(secret, 0o600)
    # The folder is one connector code may read; the file in it is root's alone.
    sandbox = Sandbox(readable_paths=[private])
    try:
        code = PROBE.replace("TARGETS", repr([secret, "/etc/shadow"]))
        result = run_action(SandboxRequest(action="read", code=code), sandbox=sandbox)
    finally:
        sandbox.stop()
        shutil.rmtree(private, ignore_errors=True)

    assert result.ok, result.error
    assert result.isolation == "bubblewrap"
    found = [row[0] for row in result.result["rows"]]
    # /etc/shadow is not even in the sandbox's view (an allow-list of /etc).
    assert found == ["PermissionError", "FileNotFoundError"]
