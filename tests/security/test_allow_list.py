"""The sandbox's view is an allow-list: connector code and package builds see the system, the
interpreter, the engine and the folders SANDBOX_READABLE_PATHS lists, and nothing else of the
host: not the project's source, not a world-readable file elsewhere, not /etc/shadow, pip.conf or
gitconfig."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from connector_engine.environments.spec import PackageFileRef, environment_spec
from connector_engine.environments.store import EnvironmentStore
from connector_engine.system.bubblewrap import SYSTEM_ETC
from runs.services import preview_run
from tests.environments.helpers import sdist_bytes
from tests.runs.ingest_helpers import SOURCES_ROOT

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

# What a connector (or an sdist's build code) tries: each path's content or the error's name,
# and what the root and /etc hold.
LOOK = """
import json, os

def look(targets):
    found = {}
    for path in targets:
        try:
            with open(path) as handle:
                found[path] = handle.read()
        except OSError as exc:
            found[path] = type(exc).__name__
    return {"found": found, "root": sorted(os.listdir("/")), "etc": sorted(os.listdir("/etc"))}
"""

CONNECTOR = (
    LOOK
    + """
TARGETS = TARGET_LIST

def list_objects(context, metadata):
    yield {"name": json.dumps(look(TARGETS)), "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    raise NotImplementedError
"""
)

BUILD = (
    LOOK
    + """
print("PROBE " + json.dumps(look(TARGET_LIST)), flush=True)
raise SystemExit("probe done")
"""
)


@pytest.fixture
def planted():
    """A world-readable file outside every allowed folder, and one in a readable folder."""
    outside = Path(tempfile.mkdtemp(prefix="cs-not-allowed-", dir="/var/tmp"))
    outside.chmod(0o755)
    stray = outside / "notes.txt"
    stray.write_text("WORLD-READABLE-BUT-NOT-ALLOWED")
    stray.chmod(0o644)
    allowed = Path(tempfile.mkdtemp(prefix="allowed-", dir=SOURCES_ROOT))
    allowed.chmod(0o755)
    source = allowed / "orders.csv"
    source.write_text("id\n1\n")
    source.chmod(0o644)
    yield str(stray), str(source)
    shutil.rmtree(outside, ignore_errors=True)
    shutil.rmtree(allowed, ignore_errors=True)


def targets(stray: str, *others: str) -> list[str]:
    base = Path(settings.BASE_DIR)
    return [stray, str(base / "manage.py"), "/etc/shadow", "/etc/pip.conf", *others]


def assert_only_allowed(seen: dict, stray: str) -> None:
    found = seen["found"]
    for path in targets(stray):
        assert found[path] == "FileNotFoundError", (path, found[path])
    # Only the system's, the interpreter's and the engine's top directories; only allowed /etc.
    assert set(seen["root"]) <= {
        "usr",
        "bin",
        "sbin",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "etc",
        "dev",
        "proc",
        "tmp",
        *Path(settings.BASE_DIR).parts[1:2],
        *Path(os.path.realpath(sys.base_prefix)).parts[1:2],
        *Path(SOURCES_ROOT).parts[1:2],
    }, seen["root"]
    allowed = {pattern.rstrip("*") for pattern in SYSTEM_ETC}
    assert all(any(name.startswith(a) for a in allowed) for name in seen["etc"]), seen["etc"]


@pytest.mark.django_db
def test_connector_code_sees_only_the_allow_list(connector, planted):
    stray, source = planted
    code = CONNECTOR.replace("TARGET_LIST", repr(targets(stray, source)))
    connector.code = code
    connector.save()

    run = preview_run(connector=connector, action="list", user=connector.connection.owner)

    assert run.status == "succeeded", run.error
    seen = json.loads(run.result["objects"][0]["name"])
    assert seen["found"][source] == "id\n1\n"  # a folder SANDBOX_READABLE_PATHS lists
    assert_only_allowed(seen, stray)


@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None, reason="the probe sdist builds offline"
)
def test_build_code_sees_only_the_allow_list(planted, tmp_path):
    stray, _ = planted
    sdist = sdist_bytes(BUILD.replace("TARGET_LIST", repr(targets(stray))))
    upload = tmp_path / "probe-0.1.tar.gz"
    upload.write_bytes(sdist)
    store = EnvironmentStore(
        tmp_path / "environments", pip_args=["--isolated", "--no-index", "--no-build-isolation"]
    )
    ref = PackageFileRef(upload.name, hashlib.sha256(sdist).hexdigest(), str(upload))

    outcome = store.ensure(environment_spec([], [ref]))

    assert not outcome.ok
    line = next(line for line in outcome.log.splitlines() if line.strip().startswith("PROBE "))
    assert_only_allowed(json.loads(line.strip()[len("PROBE ") :]), stray)
