"""A scale-out ingest on Spark parses with the connector's csv options, as the sandbox does."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from runs import storage
from runs.models import Partition, RunStatus
from tests.factories import make_connector
from tests.runs.ingest_helpers import ingest

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.spark,
    pytest.mark.usefixtures("spark_server", "ingest_settings"),
]

SEMICOLONS = """\
def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield "a;b\\n1;x\\n2;\\n"
"""


def rows(connector) -> list[dict]:
    partition = Partition.objects.get(connector=connector)
    return pq.read_table(storage.absolute_path(partition.storage_path)).to_pylist()


def test_spark_ingest_uses_the_parser_options(connection):
    options = {"connection": connection, "code": SEMICOLONS, "interface": "bytes"}
    options |= {"parser": "csv", "parser_options": {"delimiter": ";"}}
    normal = make_connector(name="Normal", **options)
    scaled = make_connector(name="Scaled", **options)
    normal_run, spark_run = ingest(normal), ingest(scaled, engine="spark")
    assert normal_run.status == spark_run.status == RunStatus.SUCCEEDED, spark_run.error_message
    assert rows(scaled) == rows(normal) == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
