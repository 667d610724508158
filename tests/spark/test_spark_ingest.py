"""Ingest of a spark connector writes each partition to Parquet, like the other interfaces."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from connections.models import Connector
from runs import storage
from runs.ingest import services
from runs.models import Partition, RunStatus

pytestmark = [pytest.mark.django_db, pytest.mark.spark, pytest.mark.usefixtures("spark_server")]


def test_it_ingests_the_spark_example_into_parquet(examples, settings, tmp_path):
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    connector = Connector.objects.get(slug="languages-spark")
    run = services.ingest_create(connector=connector)
    run = services.ingest_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED, (run.error_type, run.error_message)
    assert run.partitions_done == 6 and run.rows_written == 22
    table = pq.read_table(storage.absolute_path(Partition.objects.get(name="1990s").storage_path))
    assert table.column("language").to_pylist() == [
        "Haskell",
        "Python",
        "Java",
        "JavaScript",
        "Ruby",
    ]
    assert table.schema.field("first_appeared").type == "int64"
