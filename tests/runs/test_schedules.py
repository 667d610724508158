"""Schedules: enqueue_due, catch-up after downtime, cron in a timezone, the worker's ticker,
`manage.py schedule` and the editor's schedule block."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from runs.models import Run, RunKind, RunStatus, Schedule
from runs.schedules import ScheduleError, enqueue_due, schedule_off, schedule_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def restore_signals():
    """The worker installs its own SIGINT/SIGTERM handlers; put pytest's back."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ingests(connector) -> list[Run]:
    return list(Run.objects.filter(connector=connector, kind=RunKind.INGEST).order_by("pk"))


# ---------------------------------------------------------------- enqueue_due


def test_it_queues_an_ingest_when_due_and_not_before(connector):
    schedule = schedule_set(connector=connector, every="15m", now=T0)
    assert schedule.next_run == at(15)

    assert enqueue_due(at(14)) == []
    [run] = enqueue_due(at(15))

    assert run.kind == RunKind.INGEST and run.status == RunStatus.QUEUED
    assert run.parameters["scheduled"] is True
    schedule.refresh_from_db()
    assert schedule.last_run == run
    assert schedule.next_run == at(30)


def test_it_never_queues_a_second_ingest_while_one_is_queued_or_running(connector):
    schedule_set(connector=connector, every="15m", now=T0)
    [first] = enqueue_due(at(15))

    assert enqueue_due(at(30)) == []  # the first is still queued
    Run.objects.filter(pk=first.pk).update(status=RunStatus.RUNNING)
    assert enqueue_due(at(45)) == []
    assert ingests(connector) == [first]

    Run.objects.filter(pk=first.pk).update(status=RunStatus.SUCCEEDED)
    [second] = enqueue_due(at(46))  # the waiting slot runs once the first has finished
    assert len(ingests(connector)) == 2
    assert Schedule.objects.get().next_run == at(60)
    assert enqueue_due(at(47)) == []
    assert second.pk != first.pk


def test_a_dry_run_does_not_hold_back_a_scheduled_ingest(connector):
    schedule_set(connector=connector, every="1h", now=T0)
    Run.objects.create(connector=connector, kind=RunKind.INGEST, dry_run=True)
    assert len(enqueue_due(at(60))) == 1


def test_after_downtime_it_queues_one_catch_up_run_then_the_next_future_slot(connector):
    schedule_set(connector=connector, every="15m", now=T0)

    queued = enqueue_due(at(15 * 10 + 7))  # ten slots missed

    assert len(queued) == 1
    assert Schedule.objects.get().next_run == at(165)  # keeps the cadence
    Run.objects.update(status=RunStatus.SUCCEEDED)
    assert enqueue_due(at(160)) == []


def test_after_downtime_a_cron_schedule_catches_up_once(connector):
    schedule_set(connector=connector, cron="0 * * * *", now=T0)
    assert Schedule.objects.get().next_run == at(60)

    assert len(enqueue_due(at(60 * 24 + 30))) == 1
    assert Schedule.objects.get().next_run == at(60 * 25)


def test_an_off_schedule_queues_nothing(connector):
    schedule_set(connector=connector, every="1m", now=T0)
    schedule_off(connector=connector)
    assert enqueue_due(at(60)) == []
    assert Schedule.objects.get().next_run is None


def test_a_cron_schedule_keeps_local_time_across_dst(connector):
    paris_spring = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # clocks go forward on the 29th
    schedule = schedule_set(
        connector=connector, cron="0 9 * * *", tz="Europe/Paris", now=paris_spring
    )
    assert schedule.next_run == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST

    enqueue_due(datetime(2026, 3, 29, 7, 0, tzinfo=UTC))
    schedule.refresh_from_db()
    assert schedule.next_run == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)

    winter = schedule_set(
        connector=connector,
        cron="0 9 * * *",
        now=datetime(2026, 3, 27, 12, 0, tzinfo=UTC),
    )
    assert winter.timezone == "Europe/Paris"  # kept when not given
    assert winter.next_run == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 CET


def test_an_interval_ignores_the_wall_clock(connector):
    schedule = schedule_set(connector=connector, every="2h", tz="America/New_York", now=T0)
    assert schedule.next_run == at(120)
    assert schedule.describe() == "every 2h"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cron": "61 * * * *"}, "Bad cron expression"),
        ({"cron": "not a cron"}, "Bad cron expression"),
        ({"cron": "0 0 * * * *"}, "five fields"),
        ({"every": "15"}, "Bad interval"),
        ({"every": "0m"}, "Bad interval"),
        ({"every": "15m", "tz": "Mars/Olympus"}, "Unknown timezone"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(connector, changes, message):
    with pytest.raises(ScheduleError, match=message):
        schedule_set(connector=connector, **changes)
    assert not Schedule.objects.exists()


def test_one_failing_connector_does_not_stop_the_others(connection, connector, monkeypatch):
    from runs import schedules
    from tests.factories import make_connector

    other = make_connector(connection=connection, name="Customers")
    schedule_set(connector=connector, every="1m", now=T0)
    schedule_set(connector=other, every="1m", now=T0)
    real = schedules.tasks.ingest_enqueue

    def broken_for_orders(*, connector):
        if connector.slug == "orders":
            raise RuntimeError("boom")
        return real(connector=connector)

    monkeypatch.setattr(schedules.tasks, "ingest_enqueue", broken_for_orders)
    [run] = enqueue_due(at(1))
    assert run.connector == other
    assert Schedule.objects.get(connector=connector).next_run == at(2)  # the slot is skipped


# ---------------------------------------------------------------- the worker


@pytest.mark.django_db(transaction=True)
def test_the_worker_queues_and_runs_due_ingests_and_stops_its_ticker(
    connector,
    restore_signals,
    monkeypatch,
):
    from runs import tasks

    executed = []
    monkeypatch.setattr(tasks, "ingest_execute", lambda run_id: executed.append(run_id) or Run())
    Schedule.objects.create(connector=connector, interval_s=60, next_run=at(0))
    out = StringIO()

    call_command("worker", "--batch", "--no-reload", "--no-startup-delay", stdout=out)

    [run] = ingests(connector)
    assert "Queued scheduled ingest(s) #" in out.getvalue()
    assert executed == [run.pk]
    assert not [t for t in threading.enumerate() if t.name == "schedule-ticker"]


# ---------------------------------------------------------------- manage.py schedule


def schedule_command(*args: str) -> str:
    out = StringIO()
    call_command("schedule", *args, stdout=out)
    return out.getvalue()


def test_the_command_sets_a_cron_schedule(connector):
    out = schedule_command("orders", "--cron", "30 6 * * 1-5", "--timezone", "Europe/Paris")

    schedule = Schedule.objects.get()
    assert (schedule.cron, schedule.timezone, schedule.enabled) == (
        "30 6 * * 1-5",
        "Europe/Paris",
        True,
    )
    assert "Scheduled orders: cron 30 6 * * 1-5 (Europe/Paris); next run" in out


def test_the_command_sets_an_interval_then_turns_it_off(connector):
    schedule_command("orders", "--every", "15m")
    assert Schedule.objects.get().interval_s == 900

    assert "is off" in schedule_command("orders", "--off")
    schedule = Schedule.objects.get()
    assert not schedule.enabled and schedule.next_run is None


def test_the_command_lists_schedules_as_text_and_json(connector):
    assert schedule_command("--list") == "No schedules.\n"
    schedule_command("orders", "--every", "2h")

    text = schedule_command("--list")
    assert text.startswith("orders\tevery 2h (UTC)\tnext_run 20")
    [row] = json.loads(schedule_command("--list", "--json"))
    assert row["slug"] == "orders" and row["schedule"] == "every 2h"
    assert datetime.fromisoformat(row["next_run"]) == Schedule.objects.get().next_run
    assert row["last_run"] is None and row["enabled"] is True


@pytest.mark.parametrize(
    "args",
    [
        ("orders", "--cron", "99 * * * *"),
        ("orders", "--every", "soon"),
        ("orders", "--every", "5m", "--timezone", "Nowhere/Nothing"),
        ("missing", "--every", "5m"),
        ("orders",),
        ("--every", "5m"),
        ("orders", "--list"),
        ("orders", "--every", "5m", "--json"),
    ],
)
def test_the_command_exits_2_on_bad_input(connector, args):
    with pytest.raises(CommandError) as error:
        call_command("schedule", *args)
    assert error.value.returncode == 2
    assert not Schedule.objects.exists()


def test_the_command_refuses_two_actions(connector):
    with pytest.raises(CommandError):
        call_command("schedule", "orders", "--every", "5m", "--off")


# ---------------------------------------------------------------- the editor


def test_the_editor_shows_the_schedule_and_its_next_and_last_run(client, member, connector):
    client.force_login(member)
    url = reverse("connector_editor", args=[connector.slug])
    assert "Schedule:</strong>" in client.get(url).content.decode()

    schedule_set(connector=connector, cron="0 9 * * *", tz="Europe/Paris", now=T0)
    [run] = enqueue_due(datetime(2026, 1, 6, 8, 0, tzinfo=UTC))
    page = client.get(url).content.decode()

    assert "cron 0 9 * * *" in page and "(Europe/Paris)" in page
    assert "2026-01-07 09:00 CET" in page  # next run, in the schedule's timezone
    assert reverse("runs:detail", args=[run.pk]) in page


def test_the_editor_sets_a_schedule_and_turns_it_off(client, member, connector):
    client.force_login(member)
    url = reverse("runs:schedule", args=[connector.slug])

    block = client.post(url, {"schedule": "15m", "schedule_timezone": "UTC"}).content.decode()
    assert "every 15m" in block and 'id="schedule-off"' in block
    assert Schedule.objects.get().interval_s == 900

    block = client.post(url, {"schedule": "0 6 * * 1-5", "schedule_timezone": "Asia/Tokyo"})
    schedule = Schedule.objects.get()
    assert (schedule.cron, schedule.timezone) == ("0 6 * * 1-5", "Asia/Tokyo")

    block = client.post(url, {"schedule_action": "off"}).content.decode()
    assert not Schedule.objects.get().enabled and ">off</span>" in block


def test_the_editor_shows_why_a_schedule_is_refused(client, member, connector):
    client.force_login(member)
    url = reverse("runs:schedule", args=[connector.slug])
    block = client.post(url, {"schedule": "0 25 * * *", "schedule_timezone": "UTC"})
    assert "Bad cron expression" in block.content.decode()
    assert 'value="0 25 * * *"' in block.content.decode()  # kept to correct it
    assert not Schedule.objects.exists()


def test_only_people_who_may_use_the_connection_set_its_schedule(client, stranger, connector):
    client.force_login(stranger)
    url = reverse("runs:schedule", args=[connector.slug])
    assert client.post(url, {"schedule": "15m"}).status_code == 403
    assert client.get(url).status_code in {403, 405}
    assert not Schedule.objects.exists()


def test_the_admin_lists_schedules_read_only(client, staff, connector):
    schedule_set(connector=connector, every="1h", now=T0)
    client.force_login(staff)
    page = client.get(reverse("admin:runs_schedule_changelist")).content.decode()
    assert "every 1h" in page
    assert client.get(reverse("admin:runs_schedule_add")).status_code == 403


def test_setting_a_schedule_keeps_its_last_run(connector):
    schedule_set(connector=connector, every="15m", now=T0)
    [run] = enqueue_due(at(15))
    schedule = schedule_set(connector=connector, cron="0 * * * *", now=at(16))
    schedule.refresh_from_db()
    assert schedule.last_run == run and schedule.next_run == at(60)
