"""Planning an ingest: the listing is validated before anything is written; dry runs and
"What will the next ingest do?" plan the same way and write nothing."""

from __future__ import annotations

import pytest

from runs import storage
from runs.ingest import services
from runs.models import Partition, PartitionJob, RunStatus
from tests.factories import make_connector
from tests.runs.ingest_helpers import committed, ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"dup": "x", "2024/dup": "y"}, "duplicate leaf name 'dup'"),
        ({"ok": "v1", "bad": ""}, "'fingerprint' must not be empty"),
    ],
)
def test_validation_problems_stop_the_run_before_anything_is_written(
    connection, source, entries, expected
):
    code = source.code.replace(
        'yield {"name": name, "fingerprint": entry["fingerprint"]}',
        'yield {"name": name.split("/")[-1], "fingerprint": entry["fingerprint"]}',
    )
    connector = make_connector(connection=connection, name="Broken", code=code)
    for name, fingerprint in entries.items():
        source.set(name, fingerprint)
    run = ingest(connector)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ValidationError"
    assert expected in run.error_message
    problems = run.result["listing"]["problems"]
    assert any(expected in problem["message"] for problem in problems)
    assert "plan" not in run.result
    assert not Partition.objects.filter(connector=connector).exists()
    assert not PartitionJob.objects.filter(run=run).exists()
    assert not storage.connector_directory(connector.pk).exists()


def test_a_bad_fingerprint_does_not_delete_committed_partitions(source_connector, source):
    source.set("a", "v1")
    source.set("b", "v1")
    ingest(source_connector)
    source.entries["b"]["fingerprint"] = 42
    source.save()
    run = ingest(source_connector)
    assert run.error_type == "ValidationError"
    assert committed(source_connector) == {"a": "v1", "b": "v1"}


def test_a_truncated_listing_stops_the_run(source_connector, source, settings):
    settings.INGEST_MAX_OBJECTS = 2
    for name in ("a", "b", "c"):
        source.set(name, "v1")
    run = ingest(source_connector)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ListingTruncated"
    assert not Partition.objects.exists()


def test_a_dry_run_plans_without_writing(source_connector, source):
    source.set("a", "v1")
    ingest(source_connector)
    source.set("a", "v2")
    source.set("b", "v1")
    run = ingest(source_connector, dry_run=True)
    assert run.status == RunStatus.SUCCEEDED and run.dry_run
    plan = run.result["plan"]
    assert plan["counts"] == {"read": 2, "skip": 0, "delete": 0}
    assert plan["read"] == [
        {"name": "a", "reason": "fingerprint changed"},
        {"name": "b", "reason": "new"},
    ]
    assert committed(source_connector) == {"a": "v1"}
    assert not PartitionJob.objects.filter(run=run).exists()


def test_ingest_plan_says_what_the_next_ingest_will_do(source_connector, source):
    source.set("a", "v1")
    source.set("gone", "v1")
    ingest(source_connector)
    source.remove("gone")
    source.set("b", "v1")
    outcome = services.ingest_plan(connector=source_connector)
    assert outcome.ok
    assert outcome.plan.counts == {"read": 1, "skip": 1, "delete": 1}
    data = outcome.to_dict()
    assert data["plan"]["skip"] == ["a"] and data["plan"]["delete"] == ["gone"]
    assert data["error"] is None
