"""The deletion guard: a plan that deletes all committed partitions, or more than
INGEST_MAX_DELETE_FRACTION of them, stops before anything is written unless deletes are allowed;
a listing that raised is never taken for an empty one."""

from __future__ import annotations

import pytest

from runs import storage
from runs.ingest import services
from runs.models import Partition, PartitionJob, RunStatus
from tests.factories import make_connector
from tests.runs.ingest_helpers import assert_partitions_match_source, committed, ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


@pytest.fixture
def ingested(source_connector, source):
    """The connector with four partitions committed."""
    for name in ("a", "b", "c", "d"):
        source.set(name, "v1")
    assert ingest(source_connector).status == RunStatus.SUCCEEDED
    return source_connector


def files(connector) -> set[str]:
    return set(Partition.objects.filter(connector=connector).values_list("storage_path", flat=True))


def assert_nothing_written(connector, run, before: set[str]) -> None:
    assert committed(connector) == dict.fromkeys("abcd", "v1")
    assert files(connector) == before
    assert all(storage.absolute_path(path).exists() for path in before)
    assert not PartitionJob.objects.filter(run=run).exists()


def test_an_emptied_source_stops_before_anything_is_written(ingested, source):
    before = files(ingested)
    source.entries.clear()
    source.save()
    run = ingest(ingested)
    assert run.status == RunStatus.FAILED and run.error_type == "DeletionGuard"
    assert "deletes 4 of 4 committed partitions (all of them" in run.error_message
    assert f"manage.py ingest {ingested.slug} --allow-deletes" in run.error_message
    assert run.result["plan"]["counts"] == {"read": 0, "skip": 0, "delete": 4}
    assert run.partitions_total == 0 and run.partitions_skipped == 0
    assert_nothing_written(ingested, run, before)


def test_a_new_partition_is_not_read_while_most_would_be_deleted(ingested, source):
    before = files(ingested)
    for name in ("a", "b", "c"):
        source.remove(name)
    source.set("e", "v1")
    run = ingest(ingested)
    assert run.error_type == "DeletionGuard"
    assert "deletes 3 of 4 committed partitions (more than 50%" in run.error_message
    assert_nothing_written(ingested, run, before)


def test_up_to_the_fraction_is_deleted_without_asking(ingested, source, settings):
    source.remove("a")
    source.remove("b")  # half: not more than INGEST_MAX_DELETE_FRACTION (0.5)
    run = ingest(ingested)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_partitions_match_source(ingested, source)

    settings.INGEST_MAX_DELETE_FRACTION = 0.2
    source.remove("c")  # 1 of 2
    assert ingest(ingested).error_type == "DeletionGuard"
    settings.INGEST_MAX_DELETE_FRACTION = 0.5
    assert ingest(ingested).status == RunStatus.SUCCEEDED
    assert committed(ingested) == {"d": "v1"}


def test_allow_deletes_proceeds_and_is_recorded(ingested, source):
    source.entries.clear()
    source.save()
    run = ingest(ingested, allow_deletes=True)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.parameters["allow_deletes"] is True
    assert run.partitions_done == 4
    assert_partitions_match_source(ingested, source)  # nothing committed, no file left


def test_a_dry_run_says_the_ingest_would_stop(ingested, source):
    source.entries.clear()
    source.save()
    run = ingest(ingested, dry_run=True)
    assert run.status == RunStatus.SUCCEEDED
    assert run.result["deletion_guard"]["type"] == "DeletionGuard"
    plan = services.ingest_plan(connector=ingested).to_dict()
    assert (
        plan["ok"] and plan["deletion_guard"]["message"] == run.result["deletion_guard"]["message"]
    )
    assert committed(ingested) == dict.fromkeys("abcd", "v1")


@pytest.mark.parametrize("allow_deletes", [False, True])
def test_a_listing_that_raised_is_never_taken_for_an_empty_one(ingested, source, allow_deletes):
    before = files(ingested)
    (source.directory / "manifest.json").unlink()  # list_objects raises FileNotFoundError
    run = ingest(ingested, allow_deletes=allow_deletes)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "FileNotFoundError" and run.error_function == "manifest"
    assert "plan" not in run.result
    assert_nothing_written(ingested, run, before)


def test_a_listing_that_raised_midway_deletes_nothing(connection, source):
    raising = '        if metadata["name"] == "broken":\n            raise OSError("gone away")\n'
    code = source.code.replace("    else:\n", "    else:\n" + raising)
    connector = make_connector(connection=connection, name="Midway", code=code)
    source.set("top", "v1")
    source.set("ok/a", "v1")
    assert ingest(connector).status == RunStatus.SUCCEEDED
    source.set("broken/b", "v1")
    run = ingest(connector, allow_deletes=True)
    assert run.status == RunStatus.FAILED and run.error_type == "OSError"
    assert "plan" not in run.result
    assert committed(connector) == {"top": "v1", "ok/a": "v1"}
