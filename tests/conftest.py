"""Shared fixtures: three users (owner, team member, stranger) and a staff user; a fake source
for ingests (tests/runs/ingest_helpers.py) and fast ingest settings; a Spark server and an S3
server (tests/s3_server.py) shared by the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from connector_engine.spark.server import LocalSparkServer
from connectors_site import engine_config
from connectors_site.data_dir import prepare_data_dir
from tests.factories import UserFactory, make_connection, make_connector
from tests.runs.ingest_helpers import SOURCES_ROOT, FakeSource
from tests.s3_server import MotoServer


def pytest_configure(config) -> None:
    """Create the test data directory, as manage.py does for the app, and let connector code
    read the tests' source files."""
    prepare_data_dir()
    SOURCES_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    SOURCES_ROOT.chmod(0o755)
    settings.SANDBOX_READABLE_PATHS = [*settings.SANDBOX_READABLE_PATHS, SOURCES_ROOT]
    # Opening a spark connector would start a JVM in the background: the tests that want it
    # turn it on (tests/browser/test_spark_first_start.py).
    settings.SPARK_START_ON_OPEN = False
    # manage.py processes the tests start read the same setting from the environment.
    os.environ["SANDBOX_READABLE_PATHS"] = ":".join(map(str, settings.SANDBOX_READABLE_PATHS))


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def member(db):
    return UserFactory(username="member")


@pytest.fixture
def stranger(db):
    return UserFactory(username="stranger")


@pytest.fixture
def staff(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def team(member) -> Group:
    group = Group.objects.create(name="team")
    member.groups.add(group)
    return group


@pytest.fixture
def connection(owner, team):
    connection = make_connection(
        owner=owner, name="Warehouse", credentials='{"token": "tok-SECRET-4242"}'
    )
    connection.shared_with.add(team)
    return connection


@pytest.fixture
def connector(connection):
    return make_connector(connection=connection, name="Orders")


@pytest.fixture
def source() -> Iterator[FakeSource]:
    source = FakeSource()
    yield source
    source.cleanup()


@pytest.fixture
def ingest_settings(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    settings.PARTITIONS_URL = ""  # never an operator's store: the folder above
    settings.INGEST_CONCURRENCY = 2


@pytest.fixture(scope="session")
def spark_server() -> Iterator[LocalSparkServer]:
    """One real local Spark Connect server for the whole session, stopped at the end."""
    server = engine_config.spark_server()
    server.remote()  # start it once: every test that needs Spark shares it
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[MotoServer]:
    """moto's S3 server on loopback for the whole session, stopped at the end."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    try:
        yield server.start()
    finally:
        server.stop()
