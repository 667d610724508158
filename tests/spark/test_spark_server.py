"""The local Spark Connect server: loopback, token in the environment, restarted when killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from connections.models import Connector
from runs import spark
from runs.models import RunStatus
from runs.services import preview_run

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
    assert spark_server.pid_path.is_file() and spark_server.log_path.is_file()
    assert spark.spark_status() == {
        "kind": "local",
        "label": "local Spark Connect server (local[*])",
        "up": True,
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
