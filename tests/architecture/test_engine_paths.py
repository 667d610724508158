"""User code's import path holds the engine and its environment, never the app; Spark gets the
engine as it is."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import connector_engine
from connector_engine.protocol import SandboxRequest
from connector_engine.sandbox import Sandbox, run_action

PROBE = """
import importlib.util
import sys

import pandas as pd

NAMES = ["connector_engine", "runs", "connections", "environments", "connectors_site", "django"]


def list_objects(context, metadata):
    yield {"name": "paths", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    found = [importlib.util.find_spec(name) is not None for name in NAMES]
    return pd.DataFrame({"name": NAMES + ["sys.path"], "value": found + [repr(sys.path)]})
"""


@pytest.fixture(scope="module")
def sandbox():
    sandbox = Sandbox()
    yield sandbox
    sandbox.stop()


def test_user_code_finds_the_engine_but_not_the_app(sandbox):
    result = run_action(SandboxRequest(action="read", code=PROBE), sandbox=sandbox)

    assert result.ok, result.error
    found = dict(result.result["rows"])
    assert found.pop("connector_engine") == "True"
    assert found.pop("django") == "True"  # a base package, like pandas
    paths = found.pop("sys.path")
    assert found == {
        "runs": "False",
        "connections": "False",
        "environments": "False",
        "connectors_site": "False",
    }
    project = str(Path(connector_engine.IMPORT_ROOT).parents[1])
    assert repr(project) not in paths and repr(project + "/") not in paths


def test_spark_gets_the_engine_package_as_it_is(tmp_path):
    from connector_engine.spark.source import runtime_zip

    archive = runtime_zip(tmp_path)

    root = Path(connector_engine.IMPORT_ROOT)
    expected = {p.relative_to(root).as_posix() for p in (root / "connector_engine").rglob("*.py")}
    with zipfile.ZipFile(archive) as zipped:
        assert set(zipped.namelist()) == expected
    assert runtime_zip(tmp_path) == archive  # one file per version of the sources
