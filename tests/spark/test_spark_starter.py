"""Starting the local Spark server in the background (connector_engine.spark.starter) and the
editor's status while it starts; no JVM."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from django.urls import reverse

from connector_engine.spark.server import SparkServerError
from connector_engine.spark.starter import SparkStarter, start_in_progress
from connectors_site import engine_config
from tests.factories import make_connector

SPARK_CODE = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(3)
"""


class GatedServer:
    """Starts when the test opens the gate; fails when told to."""

    use_bwrap = True
    isolation = "bubblewrap"

    def __init__(self, directory, *, fail: bool = False) -> None:
        self.lock_path = directory / "connect-server.lock"
        self.gate = threading.Event()
        self.fail = fail
        self.starts = 0
        self.up = False

    def is_up(self) -> bool:
        return self.up

    def remote(self) -> str:
        self.starts += 1
        self.gate.wait(10)
        if self.fail:
            raise SparkServerError("The local Spark Connect server did not start: no java")
        self.up = True
        return "sc://localhost:1/;token=t"


def test_it_starts_once_in_the_background(tmp_path):
    server = GatedServer(tmp_path)
    starter = SparkStarter(server)
    assert starter.start() is True
    assert starter.start() is False  # one start at a time
    assert starter.starting and starter.elapsed_s() in (0, 1)
    server.gate.set()
    starter.wait(10)
    assert not starter.starting and server.up and server.starts == 1 and starter.error == ""


def test_it_keeps_why_a_start_failed(tmp_path):
    server = GatedServer(tmp_path, fail=True)
    server.gate.set()
    starter = SparkStarter(server)
    starter.start()
    starter.wait(10)
    assert "no java" in starter.error and not starter.starting


def test_it_sees_another_process_starting_through_the_servers_lock(tmp_path):
    server = GatedServer(tmp_path)
    assert start_in_progress(server) is False  # no lock file yet
    fd = os.open(server.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert start_in_progress(server) is True
    finally:
        os.close(fd)
    assert start_in_progress(server) is False


@pytest.fixture
def gated(settings, monkeypatch, tmp_path):
    settings.SPARK_REMOTE = None
    settings.SPARK_START_ON_OPEN = True
    server = GatedServer(tmp_path)
    monkeypatch.setattr(engine_config, "_spark_server", server)
    monkeypatch.setattr(engine_config, "_spark_starter", None)
    yield server
    server.gate.set()
    engine_config.spark_starter().wait(10)


@pytest.mark.django_db
def test_the_editor_starts_spark_and_its_status_polls_until_up(client, owner, connection, gated):
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    client.force_login(owner)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert "Starting Spark (about 30 s the first time)" in page
    assert 'hx-trigger="every 2s"' in page
    status = client.get(reverse("spark_status")).content.decode()
    assert "Starting Spark" in status and 'hx-trigger="every 2s"' in status
    gated.gate.set()
    engine_config.spark_starter().wait(10)
    status = client.get(reverse("spark_status")).content.decode()
    assert ">up<" in status and "hx-trigger" not in status
    client.get(reverse("connector_editor", args=[connector.slug]))
    assert gated.starts == 1


@pytest.mark.django_db
def test_a_viewer_does_not_start_spark(client, member, team, connection, gated):
    connection.shared_with.clear()
    connection.viewers.add(team)
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    client.force_login(member)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert "not running" in page and gated.starts == 0


@pytest.mark.django_db
def test_a_failed_start_is_shown(client, owner, connection, gated):
    gated.fail = True
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    client.force_login(owner)
    client.get(reverse("connector_editor", args=[connector.slug]))
    gated.gate.set()
    engine_config.spark_starter().wait(10)
    status = client.get(reverse("spark_status")).content.decode()
    assert "did not start" in status and "no java" in status
