"""The local Spark Connect server: loopback, token in the environment, restarted when killed,
shared by the processes that use one directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from connections.models import Connector
from connector_engine.spark.processes import pid_alive, port_accepts, process_tree
from connector_engine.spark.server import LocalSparkServer
from connectors_site import engine_config
from runs.models import RunStatus
from runs.services import preview_run
from tests.processes import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.spark]


def test_it_keeps_the_token_off_the_command_line_and_binds_loopback(spark_server):
    url = spark_server.remote()
    assert url.startswith("sc://localhost:") and ";token=" in url
    pid = spark_server.jvm_pid()
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert spark_server.token not in cmdline
    assert "spark.connect.grpc.binding.address=127.0.0.1" in cmdline.replace("\0", " ")
    assert "spark.ui.enabled=false" in cmdline.replace("\0", " ")
    assert spark_server.state_path.stat().st_mode & 0o777 == 0o600
    assert spark_server.log_path.is_file()
    assert engine_config.spark_status() == {
        "kind": "local",
        "label": "local Spark Connect server (local[*])",
        "up": True,
        "starting": False,
        "error": "",
        "isolation": "bubblewrap",
    }


def test_it_restarts_the_server_when_it_was_killed(spark_server, examples):
    starts = spark_server.starts
    pid = spark_server.jvm_pid()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while spark_server.is_up() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not spark_server.is_up()
    connector = Connector.objects.get(slug="languages-spark")
    read = preview_run(connector=connector, action="read", object={"name": "2010s"})
    assert read.status == RunStatus.SUCCEEDED, read.error_message
    assert read.result["row_count"] == 4  # Rust, Kotlin, Julia, Swift
    assert spark_server.starts == starts + 1 and spark_server.jvm_pid() != pid


SHARED_SERVER = """
import json, sys
from connector_engine.spark.server import LocalSparkServer
server = LocalSparkServer(sys.argv[1])
url = server.remote()
print(json.dumps({"url": url, "starts": server.starts, "owned": server.owned}), flush=True)
sys.stdin.readline()  # wait until the test says to exit
server.stop_if_owned()  # what runs.spark does at exit
"""


def start_process(directory: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SHARED_SERVER, str(directory)],
        cwd=settings.BASE_DIR,
        env=dict(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_it_shares_one_server_between_processes(tmp_path):
    first = start_process(tmp_path)
    second = None
    try:
        started = json.loads(first.stdout.readline())
        assert started["starts"] == 1 and started["owned"] is True
        second = start_process(tmp_path)
        reused = json.loads(second.stdout.readline())
        assert reused == {"url": started["url"], "starts": 0, "owned": False}
        state = json.loads((tmp_path / "connect-server.json").read_text())
        server_tree = process_tree(state["pid"])

        second.communicate("exit\n", timeout=30)  # not its server: it stays up
        port = int(started["url"].split(":")[2].split("/")[0])
        assert port_accepts(port)

        first.communicate("exit\n", timeout=30)  # its starter stops it, workers and all
        # The kernel tears the PID namespace down after its init exits: allow it a moment.
        assert wait_for(lambda: not port_accepts(port), timeout=10)
        assert wait_for(lambda: not any(pid_alive(pid) for pid in server_tree), timeout=10)
        assert not (tmp_path / "connect-server.json").exists()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        LocalSparkServer(tmp_path).stop()  # whatever a failed assertion left running
