"""Every input is in the code fingerprint: a change of the connection's library code, packages or
uploaded package files re-reads every partition, and each read says why."""

from __future__ import annotations

import pytest

from runs.ingest import services
from runs.models import PartitionJob, RunStatus
from tests.environments.helpers import upload_wheel
from tests.runs.ingest_helpers import assert_partitions_match_source, ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


@pytest.fixture
def ingested(source_connector, source):
    """The connector with two partitions committed."""
    source.set("a", "v1")
    source.set("b", "v1", rows=2)
    assert ingest(source_connector).status == RunStatus.SUCCEEDED
    return source_connector


def reasons(run) -> dict[str, str]:
    return dict(PartitionJob.objects.filter(run=run).values_list("name", "reason"))


def assert_everything_read_again(connector, source, reason: str):
    """The next plan and ingest read every partition again, saying `reason`."""
    plan = services.ingest_plan(connector=connector).to_dict()["plan"]
    assert plan["read_reasons"] == {reason: 2} and plan["skip"] == []
    run = ingest(connector)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert reasons(run) == {"a": reason, "b": reason}
    assert_partitions_match_source(connector, source)
    again = ingest(connector)
    assert again.result["plan"]["counts"] == {"read": 0, "skip": 2, "delete": 0}


def test_a_library_code_change_reads_everything_again(ingested, connection, source):
    connection.library_code = "GREETING = 'hello'\n"
    connection.save()
    assert_everything_read_again(ingested, source, "library code changed")


def test_a_connection_packages_change_reads_everything_again(connection, source_connector, source):
    upload_wheel(connection)
    source.set("a", "v1")
    source.set("b", "v1", rows=2)
    first = ingest(source_connector)
    assert first.status == RunStatus.SUCCEEDED, first.error
    connection.packages = "tinypkg==0.1"
    connection.save()
    assert_everything_read_again(source_connector, source, "connection packages changed")


def test_an_uploaded_package_file_reads_everything_again(ingested, connection, source):
    upload_wheel(connection)
    assert_everything_read_again(ingested, source, "uploaded package files changed")


def test_several_changed_inputs_are_named_together(ingested, source):
    ingested.packages = "# no requirements, only a comment"
    ingested.code += "\n# v2\n"
    ingested.save()
    assert_everything_read_again(ingested, source, "connector code and connector packages changed")


def test_only_the_partitions_that_failed_are_read_again_and_say_so(ingested, source):
    source.set("c", "v1")
    source.set("b", "v1", rows=2, fail=True)
    ingested.code += "\n# v2\n"
    ingested.save()
    changed = ingest(ingested)
    assert changed.status == RunStatus.FAILED
    assert reasons(changed) == {
        "a": "connector code changed",
        "b": "connector code changed",
        "c": "new",
    }

    source.set("b", "v1", rows=2)  # fixed at the source
    plan = services.ingest_plan(connector=ingested).to_dict()["plan"]
    assert plan["read"] == [{"name": "b", "reason": "failed last time"}]
    assert plan["read_reasons"] == {"failed last time": 1}
    retry = ingest(ingested)
    assert retry.status == RunStatus.SUCCEEDED
    assert reasons(retry) == {"b": "failed last time"}
    assert retry.result["plan"]["skip"] == ["a", "c"]
    assert_partitions_match_source(ingested, source)
