"""One real local Spark Connect server for the whole session, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command

from runs import spark
from runs.runtime.spark_server import LocalSparkServer


@pytest.fixture(scope="session")
def spark_server() -> Iterator[LocalSparkServer]:
    server = spark.local_server()
    server.remote()  # start it once: every spark test shares it
    yield server
    server.stop()


@pytest.fixture
def examples(staff):
    call_command("load_examples")
