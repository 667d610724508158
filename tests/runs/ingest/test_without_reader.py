"""An ingest of a connector without a reader fails before listing, with the reader's name; a
plan (dry run) only lists, so it runs."""

from __future__ import annotations

import pytest

from connector_engine.protocol import IngestEngine
from runs.models import PartitionJob, RunStatus
from tests.factories import make_connector
from tests.runs.ingest_helpers import ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]

MESSAGE = (
    "The pandas interface needs read_pandas_dataframe(context, metadata) to read a partition; "
    "add it (see the template)."
)


def without_reader(code: str) -> str:
    return code[: code.index("def read_pandas_dataframe")]


@pytest.fixture
def no_reader_connector(connection, source):
    return make_connector(connection=connection, name="No reader", code=without_reader(source.code))


@pytest.mark.parametrize("engine", [IngestEngine.SANDBOX, IngestEngine.SPARK])
def test_it_fails_an_ingest_without_a_reader_before_listing(no_reader_connector, source, engine):
    source.set("a", "v1", rows=2)
    run = ingest(no_reader_connector, engine=engine)
    assert run.status == RunStatus.FAILED
    assert run.error["type"] == "ContractError"
    assert run.error["message"] == MESSAGE
    assert not PartitionJob.objects.filter(run=run).exists()
    assert "listing" not in (run.result or {})


def test_a_plan_lists_without_a_reader(no_reader_connector, source):
    source.set("a", "v1", rows=2)
    run = ingest(no_reader_connector, dry_run=True)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result["plan"]["counts"] == {"read": 1, "skip": 0, "delete": 0}
