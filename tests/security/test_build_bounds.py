"""A package build is bounded: pip's backtracking in time, the build directory in size, and a
build of a connection without network access has no network at all.

Every build here is real and offline: pip with no index, fed from a local find-links folder
(served on loopback for the backtracking test) or uploaded sdists whose build code is the probe.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import re
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from connector_engine.environments.build import BuildLimits
from connector_engine.environments.spec import EnvironmentSpec, PackageFileRef, environment_spec
from connector_engine.environments.store import EnvironmentStore
from tests.environments.helpers import sdist_bytes

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("setuptools") is None, reason="the probe sdists build offline"
    ),
]
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

# Offline: no index, not even the machine's pip configuration; sdists build with our setuptools.
OFFLINE = ["--isolated", "--no-index", "--no-build-isolation"]
VERSIONS = 40  # of `aaa`, each needing a `bbb` that does not exist
FETCH_DELAY_S = 0.4  # what the loopback "index" takes to answer each wheel, like a real one


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """Write a tiny pure-Python wheel of `name` `version` requiring `requires`."""
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    files = {
        f"{name}/__init__.py": "",
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)


def sdist(folder: Path, name: str, setup: str) -> PackageFileRef:
    """Write the sdist `name`-0.1 whose setup.py is `setup`; return it as an uploaded file."""
    path = folder / f"{name}-0.1.tar.gz"
    path.write_bytes(sdist_bytes(setup, name))
    return PackageFileRef(path.name, hashlib.sha256(path.read_bytes()).hexdigest(), str(path))


class SlowFolder(http.server.SimpleHTTPRequestHandler):
    """A find-links page of a folder whose every file takes a moment, as an index's do."""

    def do_GET(self):
        if self.path.endswith(".whl"):
            time.sleep(FETCH_DELAY_S)
        super().do_GET()

    def log_message(self, *args):
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a build stopped mid-download breaks its connection: expected here


@pytest.fixture
def serve():
    """Serve a folder on loopback with a delay per file; yield a function returning its URL."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(SlowFolder, directory=str(folder))
        server = QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""
    sock = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                connection, _ = sock.accept()
            except OSError:
                return
            accepted.append(connection)
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    yield sock.getsockname()[1], accepted
    sock.close()


def test_backtracking_past_the_time_bound_stops_and_names_the_requirement(tmp_path, serve):
    links = tmp_path / "links"
    links.mkdir()
    for minor in range(1, VERSIONS + 1):
        wheel(links, "aaa", f"1.{minor}", (f"bbb==1.{minor}",))
    wheel(links, "bbb", "0.1")  # the only bbb: no version of aaa can be installed
    store = EnvironmentStore(
        tmp_path / "environments",
        pip_args=[*OFFLINE, "--find-links", serve(links)],
        limits=BuildLimits(resolve_timeout_s=2),
    )

    started = time.monotonic()
    outcome = store.ensure(environment_spec(["aaa"]))
    elapsed = time.monotonic() - started

    assert not outcome.ok
    # pip really backtracked, and was stopped long before it had tried every version of aaa.
    assert "pip is looking at multiple versions of aaa" in outcome.log, outcome.log
    assert elapsed < VERSIONS * FETCH_DELAY_S / 2, outcome.log
    expected = "pip spent more than 2 s trying versions of aaa to resolve the requirements"
    assert expected in outcome.error, outcome.log
    assert "pin it (e.g. aaa==1." in outcome.error
    assert "ResolutionImpossible" not in outcome.log
    assert store.failure(outcome.key) is not None


FILL_SETUP = """
import glob
import time

# The build code fills the environment's build directory (the only place it may write).
building = glob.glob(ROOT + "/*.building-*")[0]
with open(building + "/fill", "wb") as handle:
    for _ in range(512):
        handle.write(b"x" * (1 << 20))
        handle.flush()
        time.sleep(0.02)
raise SystemExit("probe done")
"""


@needs_bwrap
def test_a_build_directory_past_its_size_bound_is_stopped(tmp_path):
    root = tmp_path / "environments"
    ref = sdist(tmp_path, "filler", FILL_SETUP.replace("ROOT", repr(str(root))))
    store = EnvironmentStore(root, pip_args=OFFLINE, limits=BuildLimits(max_size_mb=8))

    outcome = store.ensure(environment_spec([], [ref]))

    assert not outcome.ok
    grew = r"the build directory grew to ([\d.]+) MB, more than its limit of 8 MB"
    match = re.search(grew, outcome.error)
    assert match, outcome.log
    # The build code got past the bound and was stopped long before it had written 512 MiB.
    assert 8 < float(match.group(1)) < 256, outcome.error
    assert outcome.duration_s < 8, outcome.log
    assert "probe done" not in outcome.log
    assert not list(root.glob("*.building-*"))  # nothing of it is left


CONNECT_SETUP = """
import socket

try:
    socket.create_connection(("127.0.0.1", PORT), timeout=5).close()
    print("PROBE connected", flush=True)
except OSError as exc:
    print("PROBE failed", type(exc).__name__, exc, flush=True)
raise SystemExit("probe done")
"""


@needs_bwrap
def test_a_build_without_network_cannot_connect_and_one_with_network_can(tmp_path, listener):
    port, accepted = listener
    ref = sdist(tmp_path, "connect", CONNECT_SETUP.replace("PORT", str(port)))
    store = EnvironmentStore(tmp_path / "environments", pip_args=OFFLINE)

    offline = store.ensure(environment_spec([], [ref], network=False))

    assert not offline.ok
    assert "PROBE failed" in offline.log, offline.log
    assert "PROBE connected" not in offline.log
    assert accepted == []

    online = store.ensure(environment_spec([], [ref]))

    assert online.key != offline.key
    assert "PROBE connected" in online.log, online.log
    assert len(accepted) == 1


def test_a_build_without_network_needs_bubblewrap(tmp_path):
    store = EnvironmentStore(tmp_path / "environments", pip_args=OFFLINE, use_bwrap=False)

    outcome = store.ensure(environment_spec(["aaa"], network=False))

    assert not outcome.ok
    assert "without network access" in outcome.error
    assert "bubblewrap" in outcome.error
    assert "$ " not in outcome.log  # pip never ran


def test_network_is_part_of_the_identity_only_when_off():
    spec = environment_spec(["aaa==1.0"])
    assert spec.network is True
    assert "network" not in spec.describe()
    assert spec.key == EnvironmentSpec(("aaa==1.0",)).key
    offline = environment_spec(["aaa==1.0"], network=False)
    assert offline.describe()["network"] is False
    assert offline.key != spec.key
