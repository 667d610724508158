"""manage.py ingest: queue, run here (--wait, with progress lines), plan (--dry-run), cancel, allow
deletes; JSON and exit codes."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from runs.ingest import services as ingest_services
from runs.management.commands import ingest as ingest_command
from runs.models import Run, RunStatus
from runs.tasks import ingest_run
from tests.factories import make_connector
from tests.runs.ingest_helpers import committed
from tests.runs.manage_site import worker_site

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


@pytest.fixture
def source_connector(connection, source):
    source.set("a", "v1", rows=2)
    source.set("b", "v1", rows=3)
    return make_connector(connection=connection, name="Cli Source", code=source.code)


def run_command(capsys, *args: str) -> tuple[int, str, str]:
    try:
        call_command("ingest", *args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_it_runs_here_with_wait_and_prints_json(source_connector, capsys):
    code, out, _ = run_command(capsys, source_connector.slug, "--wait", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["ok"] is True and summary["status"] == "succeeded"
    assert summary["plan"]["counts"] == {"read": 2, "skip": 0, "delete": 0}
    assert summary["progress"]["rows"] == 5 and summary["progress"]["done"] == 2
    assert committed(source_connector) == {"a": "v1", "b": "v1"}


def test_it_prints_a_readable_summary(source_connector, capsys):
    code, out, _ = run_command(capsys, source_connector.slug, "--wait")
    assert code == 0
    assert f"Ingest #{Run.objects.get().pk} of {source_connector.slug}: succeeded" in out
    assert "plan: read 2, skip 0, delete 0" in out
    assert "5 rows" in out


def test_a_dry_run_prints_the_plan_and_writes_nothing(source_connector, source, capsys):
    run_command(capsys, source_connector.slug, "--wait")
    source.set("b", "v2")
    source.remove("a")
    source.set("c", "v1")
    code, out, _ = run_command(capsys, source_connector.slug, "--dry-run")
    assert code == 0
    assert "plan: read 2, skip 0, delete 1" in out
    assert "  b  (fingerprint changed)" in out and "  c  (new)" in out
    assert "delete:\n  a" in out
    assert committed(source_connector) == {"a": "v1", "b": "v1"}


def test_it_prints_progress_lines_to_stderr_and_one_json_object_to_stdout(
    source_connector, source, capsys, monkeypatch
):
    monkeypatch.setattr(ingest_command, "PROGRESS_MIN_S", 0.0)  # a line at every change
    source.set("b", "v1", rows=3, sleep=0.5)
    code, out, err = run_command(capsys, source_connector.slug, "--wait", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "succeeded" and out.count("\n") == 1
    run = Run.objects.get()
    lines = err.splitlines()
    assert lines and all(line.startswith(f"ingest #{run.pk}: ") for line in lines), err
    assert "1 of 2 partitions done, 2 rows," in err
    last = r"ingest #\d+: 2 of 2 partitions done, 5 rows, \d+\.\d s elapsed"
    assert re.fullmatch(last, lines[-1])


@pytest.fixture(scope="module")
def site():
    with worker_site() as site:
        yield site


def test_a_real_wait_prints_progress_to_stderr_and_only_json_to_stdout(site, source):
    source.set("a", "v1", rows=2)
    source.set("b", "v1", rows=3, sleep=2)
    site.enqueue("progress", source.code, enqueue=False)
    done = site.run("ingest", "progress", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"  # stdout is one JSON object
    lines = done.stderr.splitlines()
    assert "1 of 2 partitions done, 2 rows, " in done.stderr, done.stderr
    assert lines[-1].startswith("ingest #1: 2 of 2 partitions done, 5 rows, "), done.stderr


def test_progress_lines_come_every_few_seconds_while_nothing_changes():
    written: list[str] = []
    now = [100.0]
    progress = ingest_command.ProgressLines(written.append, clock=lambda: now[0])
    run = Run(pk=7, kind="ingest", status="running", started_at=timezone.now())
    for second in range(1, 13):  # listing all along: the first line, then one every 5 s
        now[0] += 1.0
        progress(run)
        assert len(written) == 1 + (second - 1) // 5, second
    assert written[0].startswith("ingest #7: listing the source, ")


def test_it_exits_1_when_a_partition_fails(source_connector, source, capsys):
    source.set("b", "v1", fail=True)
    code, out, _ = run_command(capsys, source_connector.slug, "--wait", "--json")
    assert code == 1
    summary = json.loads(out)
    assert summary["status"] == "failed"
    assert summary["failed_partitions"] == ["b"]
    assert summary["error"]["type"] == "PartitionsFailed"


def test_the_deletion_guard_stops_it_and_allow_deletes_goes_on(source_connector, source, capsys):
    run_command(capsys, source_connector.slug, "--wait")
    source.entries.clear()
    source.save()
    code, out, _ = run_command(capsys, source_connector.slug, "--dry-run")
    assert code == 0 and "Deletion guard: The plan deletes 2 of 2 committed partitions" in out
    code, out, _ = run_command(capsys, source_connector.slug, "--wait", "--json")
    summary = json.loads(out)
    assert code == 1 and summary["error"]["type"] == "DeletionGuard"
    assert "--allow-deletes" in summary["error"]["message"]
    assert committed(source_connector) == {"a": "v1", "b": "v1"}
    code, out, _ = run_command(capsys, source_connector.slug, "--wait", "--allow-deletes")
    assert code == 0 and "plan: read 0, skip 0, delete 2" in out
    assert committed(source_connector) == {}
    assert Run.objects.order_by("-pk").first().parameters["allow_deletes"] is True


def test_it_lists_validation_problems(connection, source, capsys):
    source.set("a", "")
    connector = make_connector(connection=connection, name="Bad", code=source.code)
    code, out, _ = run_command(capsys, connector.slug, "--wait")
    assert code == 1
    assert "ValidationError" in out
    assert "'fingerprint' must not be empty" in out


def test_without_wait_it_queues_the_run_after_commit(
    source_connector, capsys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = run_command(capsys, source_connector.slug)
    run = Run.objects.get()
    assert code == 0
    assert out.strip() == f"Queued ingest #{run.pk} of {source_connector.slug}."
    assert run.status == RunStatus.QUEUED
    task = DBTaskResult.objects.get()
    assert task.args_kwargs["kwargs"] == {"run_id": run.pk}


def test_it_refuses_a_second_active_ingest(source_connector, capsys):
    run_command(capsys, source_connector.slug)
    code, _, err = run_command(capsys, source_connector.slug)
    assert code == 1
    assert "already queued" in err


def abandoned_run(connector, seconds_ago: float = 60, **options) -> Run:
    """A queued ingest whose creator died before handing it over (no task), created a while
    ago: what a killed `ingest --wait` leaves."""
    run = ingest_services.ingest_create(connector=connector, **options)
    enqueued_at = timezone.now() - timedelta(seconds=seconds_ago)
    Run.objects.filter(pk=run.pk).update(enqueued_at=enqueued_at)
    return run


def test_wait_takes_over_an_abandoned_queued_ingest(source_connector, capsys):
    run = abandoned_run(source_connector)
    code, out, err = run_command(capsys, source_connector.slug, "--wait", "--json")
    assert code == 0, err
    assert f"Ingest #{run.pk} was queued, then abandoned" in err
    assert json.loads(out)["status"] == "succeeded"
    assert list(Run.objects.values_list("pk", "status")) == [(run.pk, RunStatus.SUCCEEDED)]
    assert committed(source_connector) == {"a": "v1", "b": "v1"}


def test_wait_leaves_a_queued_ingest_that_is_not_abandoned(source_connector, capsys):
    abandoned_run(source_connector, seconds_ago=1)  # its creator may still hand it over
    code, _, err = run_command(capsys, source_connector.slug, "--wait")
    assert code == 1 and "already queued" in err
    queued = abandoned_run(make_connector(connection=source_connector.connection, name="Other"))
    ingest_run.enqueue(run_id=queued.pk)  # a worker will run it
    code, _, err = run_command(capsys, "other", "--wait")
    assert code == 1 and "already queued" in err


def test_wait_with_other_options_says_how_to_go_on(source_connector, capsys):
    abandoned_run(source_connector, allow_deletes=True)
    code, _, err = run_command(capsys, source_connector.slug, "--wait")
    assert code == 1
    assert "abandoned (no worker has it) with other options" in err


def test_ctrl_c_before_the_run_began_cancels_it(source_connector, capsys, monkeypatch):
    def interrupted(*, run_id):  # Ctrl-C arrives as the run is about to be claimed
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_services, "ingest_claim", interrupted)
    code, _, err = run_command(capsys, source_connector.slug, "--wait")
    run = Run.objects.get()
    assert code == 1 and f"Interrupted: ingest #{run.pk} is cancelled." in err
    assert run.status == RunStatus.CANCELLED


def test_cancel_cancels_the_active_ingest(source_connector, capsys):
    run_command(capsys, source_connector.slug)
    code, out, _ = run_command(capsys, source_connector.slug, "--cancel")
    assert code == 0
    run = Run.objects.get()
    assert run.status == RunStatus.CANCELLED
    assert f"Cancelled ingest #{run.pk}" in out
    code, _, err = run_command(capsys, source_connector.slug, "--cancel")
    assert code == 1 and "no queued or running ingest" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-connector"], "no connector with slug"),
        (["SLUG", "--cancel", "--wait"], "cannot be combined"),
    ],
)
def test_it_exits_2_on_bad_usage(source_connector, args, message):
    args = [source_connector.slug if arg == "SLUG" else arg for arg in args]
    with pytest.raises(CommandError) as raised:
        call_command("ingest", *args)
    assert raised.value.returncode == 2
    assert message in str(raised.value)


def test_spark_queues_a_scale_out_ingest_and_refuses_spark_connectors(
    source_connector, connection, capsys
):
    code, out, _ = run_command(capsys, source_connector.slug, "--spark")
    assert code == 0 and "Queued ingest" in out
    assert Run.objects.get().engine == "spark"
    spark_connector = make_connector(connection=connection, name="S", interface="spark")
    with pytest.raises(CommandError, match="already reads through Spark") as raised:
        call_command("ingest", spark_connector.slug, "--spark")
    assert raised.value.returncode == 2
