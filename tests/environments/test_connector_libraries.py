"""The common connector libraries install into a connection's environment at their current
releases: the app's packages (pinned by requirements.in, constraints on every environment) admit
them. Uses the package index; `-m package_index` selects these tests, `-m "not package_index"`
leaves them out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector_engine.environments.build import canonical_name, pip_environment
from connector_engine.environments.pip_errors import pip_error
from connector_engine.environments.spec import base_constraints

LIBRARIES = (
    "boto3",
    "google-cloud-storage",
    "google-cloud-bigquery",
    "azure-storage-blob",
    "snowflake-connector-python",
    "paramiko",
    "pymongo",
    "pymysql",
    "requests",
    "httpx",
    "simple-salesforce",
    "openpyxl",
)
RESOLVE_TIMEOUT_S = 120  # pip backtracking that long means the base leaves it no good choice

pytestmark = pytest.mark.package_index


@pytest.fixture(scope="module")
def pip_home(tmp_path_factory) -> Path:
    """pip's HOME (and so its cache) shared by these resolutions."""
    return tmp_path_factory.mktemp("pip-home")


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_common_connector_library_installs_on_the_base(library, pip_home, tmp_path):
    # Its current release: what pip picks with nothing installed and nothing constrained.
    report = json.loads(pip(pip_home, "--ignore-installed", "--quiet", "--report", "-", library))
    current = next(
        item["metadata"]["version"]
        for item in report["install"]
        if canonical_name(item["metadata"]["name"]) == canonical_name(library)
    )
    # That release on top of the app's packages, constrained as a build constrains it.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(base_constraints())
    prefix = str(tmp_path / "prefix")
    options = ("--prefix", prefix, "--constraint", str(constraints))
    pip(pip_home, *options, f"{library}=={current}", failure=f"{library} {current}")


def pip(home: Path, *args: str, failure: str = "") -> str:
    """Run `pip install --dry-run` with `args` in the app's interpreter, as a build runs pip;
    fail naming `failure` (or the arguments) with pip's error when it does; return its stdout."""
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-input"]
    argv += ["--disable-pip-version-check", "--progress-bar", "off", *args]
    what = failure or " ".join(args)
    try:
        done = subprocess.run(
            argv,
            env=pip_environment(str(home)),
            capture_output=True,
            text=True,
            timeout=RESOLVE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: pip took more than {RESOLVE_TIMEOUT_S} s to resolve it")
    if done.returncode != 0:
        pytest.fail(f"{what} does not install: {pip_error(done.stdout + done.stderr)}")
    return done.stdout
