"""A connection's "network access" switch: off, its connector code runs with no network at all."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.urls import reverse

from environments.selectors import connector_environment_spec
from runs.ingest import services as ingest_services
from runs.models import RunStatus
from runs.services import preview_run
from tests.factories import make_connection, make_connector

pytestmark = pytest.mark.django_db

CALLER = """
import socket

import pandas as pd


def list_objects(context, metadata):
    yield {"name": "call", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=5) as conn:
            outcome = conn.recv(16).decode()
    except OSError as exc:
        outcome = type(exc).__name__
    return pd.DataFrame({"outcome": [outcome]})
"""

SPARK_READER = """
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(1)
"""


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP server on loopback that answers "pong" (the outside world, for the test)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"pong")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def outcome_of(connection, server: int) -> str:
    code = CALLER.replace("PORT", str(server))
    connector = make_connector(connection=connection, name=f"Caller {connection.pk}", code=code)
    run = preview_run(connector=connector, action="read")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    return run.result["rows"][0][0]


def test_with_network_off_connector_code_reaches_nothing(owner, server):
    online = make_connection(owner=owner, name="Online")
    offline = make_connection(owner=owner, name="Offline", network_access=False)

    assert outcome_of(online, server) == "pong"
    assert outcome_of(offline, server) in {"OSError", "ConnectionRefusedError"}


def test_with_network_off_spark_is_refused_clearly(owner):
    offline = make_connection(owner=owner, name="Offline", network_access=False)
    reader = make_connector(connection=offline, name="Spark", code=SPARK_READER, interface="spark")

    run = preview_run(connector=reader, action="read")

    assert run.status == RunStatus.FAILED
    assert run.error_type == "NotAvailable" and "network access" in run.error_message
    with pytest.raises(ingest_services.InvalidIngestOption, match="network access"):
        pandas_reader = make_connector(connection=offline, name="Pandas")
        ingest_services.check_ingest_engine(pandas_reader, "spark")


def test_only_the_owner_switches_the_network(client, owner, member, connection):
    client.force_login(member)
    page = client.get(reverse("connection_edit", args=[connection.slug])).content.decode()
    assert 'name="network_access"' not in page
    client.force_login(owner)
    page = client.get(reverse("connection_edit", args=[connection.slug])).content.decode()
    assert 'name="network_access"' in page


def test_an_offline_connection_builds_its_environment_offline(owner):
    offline = make_connection(owner=owner, name="Offline", network_access=False, packages="six")
    online = make_connection(owner=owner, name="Online", packages="six")
    spec_off = connector_environment_spec(make_connector(connection=offline, name="A"))
    spec_on = connector_environment_spec(make_connector(connection=online, name="B"))

    assert spec_off.network is False and spec_on.network is True
    assert spec_off.key != spec_on.key  # never served a build made with network
