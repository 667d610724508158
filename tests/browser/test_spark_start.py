"""Opening a spark connector starts Spark in the background; the editor's status line follows
the start live, without a reload. A stand-in server (no JVM) that takes a few seconds to start;
tests/browser/test_spark_first_start.py starts a real one."""

from __future__ import annotations

import re
import threading
import time

import pytest
from playwright.sync_api import expect

from connectors_site import engine_config
from tests.browser.conftest import log_in
from tests.factories import make_connector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPARK_CODE = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(3)
"""


class SlowStartingServer:
    """A LocalSparkServer's surface: down until remote() has taken `start_s` seconds."""

    use_bwrap = True
    isolation = "bubblewrap"

    def __init__(self, directory, start_s: float) -> None:
        self.lock_path = directory / "connect-server.lock"
        self.start_s = start_s
        self.starts = 0
        self.up = False
        self._lock = threading.Lock()

    def is_up(self) -> bool:
        return self.up

    def remote(self) -> str:
        with self._lock:
            if not self.up:
                self.starts += 1
                time.sleep(self.start_s)
                self.up = True
            return "sc://localhost:1/;token=t"


@pytest.fixture
def slow_spark(settings, monkeypatch, tmp_path) -> SlowStartingServer:
    settings.SPARK_REMOTE = None
    settings.SPARK_START_ON_OPEN = True
    server = SlowStartingServer(tmp_path, start_s=6.0)
    monkeypatch.setattr(engine_config, "_spark_server", server)
    monkeypatch.setattr(engine_config, "_spark_starter", None)
    return server


def test_opening_a_spark_connector_starts_spark_and_shows_it_live(page, connection, slow_spark):
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    status = page.locator("#spark-status")
    expect(status).to_contain_text("Starting Spark (about 30 s the first time)")
    expect(status).to_have_attribute("data-up", "false")
    # The seconds so far, updated live (polled every 2 s).
    expect(status).to_contain_text(re.compile(r"time\)… [2-9] s"), timeout=5_000)
    expect(status).to_contain_text("up", timeout=15_000)
    expect(status).to_have_attribute("data-up", "true")
    expect(status).not_to_have_attribute("hx-trigger", "every 2s")  # polling stopped
    # Opening it again finds it up: no second start.
    page.goto(f"/connectors/{connector.slug}/")
    expect(page.locator("#spark-status")).to_have_attribute("data-up", "true")
    assert slow_spark.starts == 1
    assert not page.errors


def test_a_remote_spark_is_not_started(page, connection, slow_spark, settings):
    settings.SPARK_REMOTE = "sc://spark.example:15002/;token=very-secret-token"
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    expect(page.locator("#spark-status")).to_contain_text("remote")
    assert slow_spark.starts == 0
