"""Spark's first start, for real: opening a spark connector with no local server up starts one
in the background, and the editor says so and then says "up" without a reload. A server of its
own (its own directory), stopped at the end: no JVM is left behind."""

from __future__ import annotations

import shutil
import uuid

import pytest
from playwright.sync_api import expect

from connectors_site import engine_config
from tests.browser.conftest import log_in
from tests.factories import make_connector

pytestmark = [pytest.mark.spark, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPARK_CODE = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(3)
"""


@pytest.fixture
def fresh_spark(settings, monkeypatch):
    """A local server manager for a directory no server runs in; stopped and removed after."""
    # Under DATA_DIR, not pytest's tmp: the server may run as nobody, who must reach it.
    directory = settings.DATA_DIR / f"spark-first-start-{uuid.uuid4().hex[:8]}"
    settings.SPARK_REMOTE = None
    settings.SPARK_DIR = directory
    settings.SPARK_START_ON_OPEN = True
    monkeypatch.setattr(engine_config, "_spark_server", None)
    monkeypatch.setattr(engine_config, "_spark_starter", None)
    server = engine_config.spark_server()
    assert not server.is_up()
    yield server
    engine_config.spark_starter().wait(settings.SPARK_START_TIMEOUT_S + 30)
    server.stop()
    assert server.jvm_pid() is None
    shutil.rmtree(directory, ignore_errors=True)


def test_opening_a_spark_connector_starts_the_server(page, connection, fresh_spark, settings):
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    log_in(page, "owner")
    page.goto(f"/connectors/{connector.slug}/")
    status = page.locator("#spark-status")
    expect(status).to_contain_text("Starting Spark (about 30 s the first time)")
    expect(status).to_have_attribute(
        "data-up", "true", timeout=(settings.SPARK_START_TIMEOUT_S + 10) * 1000
    )
    expect(status).to_contain_text("up")
    assert fresh_spark.is_up() and fresh_spark.starts == 1
    assert not page.errors
