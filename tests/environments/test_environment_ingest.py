"""Ingest runs in the connector's package environment too."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from runs import storage
from runs.ingest import services
from runs.models import Partition, RunStatus
from tests.environments.helpers import IMPORTING_CODE, upload_wheel
from tests.factories import make_connector

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def partitions_dir(settings, tmp_path):
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    settings.INGEST_CONCURRENCY = 1


def test_a_connector_imports_an_uploaded_wheel_in_ingest(connection):
    upload_wheel(connection)
    connector = make_connector(
        connection=connection, name="Tiny", code=IMPORTING_CODE, packages="tinypkg==0.1"
    )
    run = services.ingest_create(connector=connector)
    run = services.ingest_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    partition = Partition.objects.get(connector=connector)
    table = pq.read_table(storage.absolute_path(partition.storage_path))
    assert table.column("value").to_pylist() == ["tinypkg 0.1"]
    assert run.parameters["environment"]


def test_an_ingest_whose_environment_fails_to_build_writes_nothing(connection):
    connector = make_connector(
        connection=connection, name="Missing", code=IMPORTING_CODE, packages="no-such-pkg-xyz==1.0"
    )
    run = services.ingest_execute(run_id=services.ingest_create(connector=connector).pk)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "EnvironmentError"
    assert "failed to build" in run.error_message
    assert "no-such-pkg-xyz" in run.error_traceback  # pip's own log
    assert not Partition.objects.filter(connector=connector).exists()
    plan = services.ingest_plan(connector=connector)
    assert not plan.ok and plan.error["type"] == "EnvironmentError"
