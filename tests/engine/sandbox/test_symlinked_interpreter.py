"""The sandbox works when the interpreter is reached through a symbolic link (a `.venv` that
links to another folder, or a project folder that is a link): bubblewrap's view binds resolved
paths and makes the links again, so the fork server's `sys.executable` starts in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

PREVIEW = """
import json, sys
from connector_engine.protocol import SandboxRequest
from connector_engine.sandbox import Sandbox, run_action

CODE = '''
import pandas as pd
def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}
def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"x": [1, 2]})
'''
sandbox = Sandbox()
try:
    result = run_action(SandboxRequest(action="read", code=CODE), sandbox=sandbox)
finally:
    sandbox.stop()
print(json.dumps({"executable": sys.executable, "ok": result.ok, "error": result.error,
                  "isolation": result.isolation, "rows": result.result and result.result["rows"]}))
"""


@pytest.fixture
def links():
    # Outside /tmp: bubblewrap gives the fork server a /tmp of its own.
    folder = tempfile.mkdtemp(prefix="cs-links-", dir="/var/tmp")
    yield Path(folder)
    shutil.rmtree(folder)


def preview_with(python: Path) -> dict:
    done = subprocess.run(
        [str(python), "-c", PREVIEW],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_preview_runs_with_the_venv_reached_through_a_link(links):
    (links / "venv").symlink_to(sys.prefix, target_is_directory=True)

    found = preview_with(links / "venv" / "bin" / "python")

    assert found["executable"] == str(links / "venv" / "bin" / "python")
    assert found["isolation"] == "bubblewrap"
    assert found["ok"], found["error"]
    assert found["rows"] == [[1], [2]]


def test_a_preview_runs_through_a_chain_of_relative_links(links):
    # project -> ../real/project, whose .venv -> the real venv: two links, one relative.
    (links / "real").mkdir()
    (links / "real" / "project").mkdir()
    (links / "real" / "project" / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (links / "project").symlink_to("real/project", target_is_directory=True)

    found = preview_with(links / "project" / ".venv" / "bin" / "python")

    assert found["ok"], found["error"]
    assert found["rows"] == [[1], [2]]
