"""Run retention: runs_prune's keep rules, `manage.py prune_runs`, the worker's daily prune."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from runs import retention, selectors
from runs.models import FINISHED_STATUSES, Partition, PartitionJob, Run, RunStatus
from runs.retention import DAY_S, RunPruner, runs_prune

pytestmark = pytest.mark.django_db


def make_run(
    connector, *, kind: str = "read", status: str = RunStatus.SUCCEEDED, days_ago: float = 40
) -> Run:
    """A run that finished (or, when not finished, was queued) `days_ago` days ago."""
    when = timezone.now() - timedelta(days=days_ago)
    finished = status in FINISHED_STATUSES
    run = Run.objects.create(
        connector=connector,
        kind=kind,
        status=status,
        started_at=when,
        finished_at=when if finished else None,
    )
    Run.objects.filter(pk=run.pk).update(enqueued_at=when)  # auto_now_add on create
    return run


def commit_partition(run: Run, name: str) -> Partition:
    return Partition.objects.create(
        connector=run.connector,
        name=name,
        fingerprint="f",
        code_fingerprint="c",
        storage_path=f"{run.connector_id}/{name}.parquet",
        run=run,
    )


def remaining() -> set[int]:
    return set(Run.objects.values_list("pk", flat=True))


# ---------------------------------------------------------------- the service


def test_it_deletes_finished_runs_older_than_the_retention(connector, settings):
    settings.RUN_RETENTION_DAYS = 30
    old = [
        make_run(connector, kind="read"),
        make_run(connector, kind="list", status=RunStatus.FAILED),
        make_run(connector, kind="context", status=RunStatus.TIMED_OUT),
        make_run(connector, kind="ingest", status=RunStatus.CANCELLED),
        make_run(connector, kind="ingest", status=RunStatus.INTERRUPTED),
    ]
    recent = make_run(connector, days_ago=29)

    assert runs_prune() == len(old)

    assert remaining() == {recent.pk}


def test_it_keeps_ingests_that_own_committed_partitions(connector):
    owner_of_data = make_run(connector, kind="ingest", days_ago=90)
    commit_partition(owner_of_data, "a")
    superseded = make_run(connector, kind="ingest", days_ago=80)  # its partitions were rewritten
    PartitionJob.objects.create(run=superseded, name="a", action="read")
    failed = make_run(connector, kind="ingest", status=RunStatus.FAILED, days_ago=70)

    assert runs_prune(older_than_days=30) == 2

    assert remaining() == {owner_of_data.pk}
    assert not PartitionJob.objects.exists()  # a deleted ingest's jobs go with it
    assert Partition.objects.get().run == owner_of_data
    assert not Run.objects.filter(pk__in=[superseded.pk, failed.pk]).exists()


def test_it_never_touches_queued_or_running_runs(connector):
    queued = make_run(connector, kind="ingest", status=RunStatus.QUEUED, days_ago=400)
    running = make_run(connector, kind="ingest", status=RunStatus.RUNNING, days_ago=400)
    # A preview running now (one running for days was left by a dead process: see below).
    previewing = make_run(connector, kind="read", status=RunStatus.RUNNING, days_ago=0)

    assert runs_prune(older_than_days=0) == 0

    assert remaining() == {queued.pk, running.pk, previewing.pk}


def test_a_retention_of_zero_days_keeps_everything(connector, settings):
    settings.RUN_RETENTION_DAYS = 0
    kept = make_run(connector, days_ago=4000)

    assert runs_prune() == 0

    assert remaining() == {kept.pk}


def test_it_deletes_in_batches(connector):
    for _ in range(8):
        make_run(connector)

    assert runs_prune(older_than_days=30, batch_size=3) == 8
    assert remaining() == set()


# ---------------------------------------------------------------- manage.py prune_runs


def prune_runs(*arguments: str) -> str:
    out = StringIO()
    call_command("prune_runs", *arguments, stdout=out)
    return out.getvalue()


def test_the_command_prints_what_it_removed(connector, settings):
    settings.RUN_RETENTION_DAYS = 30
    make_run(connector, kind="read")
    make_run(connector, kind="list")
    make_run(connector, kind="ingest", status=RunStatus.FAILED)
    kept = make_run(connector, kind="ingest", days_ago=10)

    output = prune_runs()

    assert "Removed 3 runs finished more than 30 days ago" in output
    assert "2 previews, 1 ingest" in output
    assert remaining() == {kept.pk}


def test_the_command_takes_an_age_and_a_dry_run(connector):
    make_run(connector, days_ago=12)
    recent = make_run(connector, days_ago=2)

    dry = prune_runs("--older-than", "10", "--dry-run")

    assert "Would remove 1 run finished more than 10 days ago" in dry
    assert len(remaining()) == 2
    assert "Removed 1 run" in prune_runs("--older-than", "10")
    assert remaining() == {recent.pk}


def test_the_command_says_when_retention_is_off(connector, settings):
    settings.RUN_RETENTION_DAYS = 0
    make_run(connector)

    assert "RUN_RETENTION_DAYS is 0" in prune_runs()
    assert len(remaining()) == 1


# ---------------------------------------------------------------- the worker's daily prune


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pruner_prunes_at_once_then_once_a_day(connector, settings):
    settings.RUN_RETENTION_DAYS = 30
    clock = FakeClock()
    pruner = RunPruner(interval_s=DAY_S, clock=clock)
    make_run(connector)

    assert pruner.tick() == 1  # at start
    make_run(connector)
    clock.now += DAY_S - 60
    assert pruner.tick() is None  # not a day yet
    assert pruner.seconds_until_due() == 60
    assert len(remaining()) == 1
    clock.now += 60
    assert pruner.tick() == 1
    assert remaining() == set()


def test_a_failed_prune_is_retried_within_the_day():
    def locked() -> int:
        raise RuntimeError("database is locked")

    pruner = RunPruner(interval_s=DAY_S, clock=FakeClock(), prune=locked)
    with pytest.raises(RuntimeError):
        pruner.tick()
    assert 0 < pruner.seconds_until_due() < DAY_S / 24


@pytest.mark.django_db(transaction=True)
def test_the_pruner_thread_prunes_and_stops_with_its_block(connector, settings):
    settings.RUN_RETENTION_DAYS = 30
    pruner = RunPruner(interval_s=0.05)
    with pruner.running() as thread:
        make_run(connector)
        deadline = time.monotonic() + 20
        while remaining() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remaining() == set()
    assert not thread.is_alive()


@pytest.fixture
def restore_signals():
    """The worker installs its own SIGINT/SIGTERM handlers; put pytest's back."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "SIGQUIT"):
        saved[signal.SIGQUIT] = signal.getsignal(signal.SIGQUIT)
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.django_db(transaction=True)  # the worker closes connections left in a transaction
def test_the_worker_prunes_when_it_starts_and_stops_its_pruner(
    connector, settings, restore_signals
):
    settings.RUN_RETENTION_DAYS = 30
    make_run(connector)
    recent = make_run(connector, days_ago=1)
    out = StringIO()

    call_command("worker", "--batch", "--no-reload", "--no-startup-delay", stdout=out)

    assert remaining() == {recent.pk}
    assert "Removed 1 finished run" in out.getvalue()
    assert not [t for t in threading.enumerate() if t.name == "run-pruner"]


def test_a_preview_a_dead_process_left_running_is_interrupted_then_pruned(connector):
    now = timezone.now()
    left = Run.objects.create(
        connector=connector, kind="read", status=RunStatus.RUNNING, started_at=now
    )
    later = now + selectors.preview_abandoned_after() + timedelta(seconds=1)

    assert retention.previews_interrupt_abandoned(now=now) == 0  # still within its time
    assert retention.previews_interrupt_abandoned(now=later) == 1

    left.refresh_from_db()
    assert left.status == RunStatus.INTERRUPTED and left.error_type == "Interrupted"
    assert retention.runs_prune(older_than_days=0, now=later + timedelta(seconds=1)) == 1
