"""A package build is user code: its sdist's build code sees none of the server's environment
(no HOME with its .netrc and pip configuration, no PIP_* variables) and a bounded /tmp."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile

import pytest

from connector_engine.environments.build import BuildLimits
from connector_engine.environments.spec import PackageFileRef, environment_spec
from connector_engine.environments.store import EnvironmentStore
from tests.environments.helpers import sdist_bytes

# setup.py of an sdist that reports what its build sees, then fails the build on purpose.
PROBE_SETUP = """
import json
import os

home = os.path.expanduser("~")
written = 0
try:
    with open("/tmp/fill", "wb") as handle:
        for _ in range(64):
            handle.write(b"x" * (1 << 20))
            handle.flush()
            written += 1
except OSError:
    pass
seen = {
    "home": home,
    "netrc": os.path.exists(os.path.join(home, ".netrc")),
    "pip": sorted(name for name in os.environ if name.startswith("PIP_")),
    "written_mb": written,
}
print("PROBE " + json.dumps(seen), flush=True)
raise SystemExit("probe done")
"""

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
    pytest.mark.skipif(
        importlib.util.find_spec("setuptools") is None, reason="the probe sdist builds offline"
    ),
]


@pytest.fixture
def server_home(monkeypatch):
    """The server's HOME with a .netrc and a pip configuration, and its PIP_* variables."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    home = tempfile.mkdtemp(prefix="cs-server-home-", dir=base)
    with open(os.path.join(home, ".netrc"), "w") as handle:
        handle.write("machine pypi.example.com login ci password hunter2\n")
    monkeypatch.setenv("HOME", home)
    monkeypatch.setenv("PIP_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("PIP_INDEX_URL", "https://attacker.invalid/simple")
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_the_build_sees_nothing_of_the_server_and_a_bounded_tmp(server_home, tmp_path):
    sdist = sdist_bytes(PROBE_SETUP)
    path = tmp_path / "probe-0.1.tar.gz"
    path.write_bytes(sdist)
    store = EnvironmentStore(
        tmp_path / "environments",
        # Offline, with the app's setuptools; not --isolated: the server's variables must be
        # kept out by the build's own environment, not by a pip option.
        pip_args=["--no-index", "--no-build-isolation"],
        limits=BuildLimits(tmp_mb=16),
    )
    ref = PackageFileRef("probe-0.1.tar.gz", hashlib.sha256(sdist).hexdigest(), str(path))

    outcome = store.ensure(environment_spec([], [ref]))

    assert not outcome.ok
    line = next(line for line in outcome.log.splitlines() if line.strip().startswith("PROBE "))
    seen = json.loads(line.strip().removeprefix("PROBE "))
    assert seen["home"] != server_home and not seen["netrc"]
    assert "PIP_SECRET_TOKEN" not in seen["pip"] and "PIP_INDEX_URL" not in seen["pip"]
    assert seen["written_mb"] <= 16
    assert "hunter2" not in outcome.log
