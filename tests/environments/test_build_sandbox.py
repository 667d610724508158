"""pip and an sdist's build code (user code) run under bubblewrap: what the build can touch."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile

import pytest

from connector_engine.environments.spec import PackageFileRef, environment_spec
from connector_engine.environments.store import EnvironmentStore
from tests.environments.helpers import sdist_bytes, wheel_bytes, wheel_name

# setup.py of an sdist that reports what its build sees, then fails the build on purpose.
PROBE_SETUP = """
import os

status = open("/proc/self/status").read().splitlines()
capabilities = [line.split()[1] for line in status if line.startswith("CapEff")][0]
try:
    open(os.path.join(OUTSIDE, "written-by-build"), "w").close()
    outside = "written"
except OSError:
    outside = "refused"
host_uid = open("/proc/self/uid_map").read().split()[1]  # the uid the build is on the host
print("PROBE", capabilities, sorted(os.listdir(HIDDEN)), outside, flush=True)
print("HOST-UID", host_uid, flush=True)
raise SystemExit("probe done")
"""

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
    pytest.mark.skipif(
        not os.access("/var/tmp", os.W_OK), reason="needs a writable directory outside /tmp"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("setuptools") is None, reason="the probe sdist builds offline"
    ),
]


def probe_sdist(hidden: str, outside: str) -> bytes:
    return sdist_bytes(
        PROBE_SETUP.replace("OUTSIDE", repr(outside)).replace("HIDDEN", repr(hidden))
    )


def test_the_build_sees_no_hidden_path_writes_nothing_outside_and_has_no_capabilities():
    outside = tempfile.mkdtemp(prefix="cs-build-outside-", dir="/var/tmp")
    hidden = os.path.join(outside, "hidden")  # like DATA_DIR: holds the store and the upload
    os.mkdir(hidden)
    try:
        sdist = probe_sdist(hidden, outside)
        path = os.path.join(hidden, "probe-0.1.tar.gz")
        with open(path, "wb") as handle:
            handle.write(sdist)
        store = EnvironmentStore(
            os.path.join(hidden, "environments"),
            # No build isolation: the probe builds with the app's setuptools, offline.
            pip_args=["--isolated", "--no-index", "--no-build-isolation"],
            hidden_paths=[hidden],
        )
        ref = PackageFileRef("probe-0.1.tar.gz", hashlib.sha256(sdist).hexdigest(), path)
        outcome = store.ensure(environment_spec([], [ref]))
        assert not outcome.ok
        # Of the hidden directory, the build sees only the way to its own build directory: not
        # the uploaded file beside it. No capabilities, even as root; nothing written outside.
        assert "PROBE 0000000000000000 ['environments'] refused" in outcome.log, outcome.log
        # Never root on host files: as root, the app builds as nobody (in a user namespace).
        expected_uid = 65534 if os.geteuid() == 0 else os.geteuid()
        assert f"HOST-UID {expected_uid}" in outcome.log, outcome.log
        assert not os.path.exists(os.path.join(outside, "written-by-build"))
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_a_built_environment_belongs_to_the_app_not_to_the_build(tmp_path):
    wheel = tmp_path / wheel_name()
    wheel.write_bytes(wheel_bytes())
    store = EnvironmentStore(tmp_path / "environments", pip_args=["--isolated", "--no-index"])
    ref = PackageFileRef(wheel.name, hashlib.sha256(wheel_bytes()).hexdigest(), str(wheel))

    outcome = store.ensure(environment_spec(["tinypkg"], [ref]))

    assert outcome.ok, outcome.log
    # Built as nobody when the app is root; handed back so that nobody cannot change it later.
    owners = {path.lstat().st_uid for path in (tmp_path / "environments").rglob("*")}
    assert owners == {os.geteuid()}
