"""Schedules: set a connector's cron expression or interval, and queue its ingests when due.

The worker (`manage.py worker`) calls `enqueue_due` when it starts and then every few seconds
in a thread (ScheduleTicker). A due schedule waits while an ingest of its connector is queued
or running, then queues one; after downtime it queues one catch-up run, not one per missed
slot, and `next_run` moves to the next slot in the future. Cron expressions are evaluated in
the schedule's timezone by croniter, so "0 9 * * *" stays 09:00 local across DST changes.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from connections import audit
from connections.models import AuditAction, Connector
from runs import tasks
from runs.background import PeriodicWork
from runs.ingest.services import IngestAlreadyActive
from runs.models import ACTIVE_STATUSES, INTERVAL_UNITS, WRITING_RUNS, Run, RunKind, Schedule

logger = logging.getLogger(__name__)

TICK_S = 5.0  # how often the worker looks for due schedules
_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


class ScheduleError(ValueError):
    """A cron expression, interval or timezone that cannot be used; the message says why."""


def parse_interval(text: str) -> int:
    """Seconds in an interval written as 30s, 15m, 2h or 1d."""
    match = _INTERVAL.match(text or "")
    if not match or int(match[1]) == 0:
        raise ScheduleError(
            f"Bad interval {text!r}: write a positive number and a unit, e.g. 30s, 15m, 2h, 1d."
        )
    return int(match[1]) * INTERVAL_UNITS[match[2]]


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"Unknown timezone {name!r}: use an IANA name such as UTC or Europe/Paris."
        ) from None


def check_cron(expression: str) -> str:
    expression = " ".join((expression or "").split())
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ScheduleError(
            f"Bad cron expression {expression!r}: five fields (minute hour day month weekday), "
            'e.g. "0 6 * * 1-5".'
        )
    return expression


def schedule_parts(text: str) -> dict[str, str]:
    """What one input holds, as schedule_set's arguments: an interval ("15m") or a cron line."""
    return {"every": text} if _INTERVAL.match(text or "") else {"cron": text}


def next_slot(schedule: Schedule, *, now: datetime) -> datetime:
    """The first slot of the schedule strictly after `now`.

    An interval keeps its cadence: slots are next_run + k * interval (from now when there is no
    next_run yet). A cron slot is computed in the schedule's timezone.
    """
    if schedule.cron:
        local = now.astimezone(parse_timezone(schedule.timezone))
        return croniter(schedule.cron, local).get_next(datetime).astimezone(ZoneInfo("UTC"))
    step = timedelta(seconds=schedule.interval_s or 0)
    if schedule.next_run is None or schedule.next_run > now:
        return now + step
    missed = (now - schedule.next_run) // step
    return schedule.next_run + (missed + 1) * step


def schedule_set(
    *,
    connector: Connector,
    cron: str | None = None,
    every: str | None = None,
    tz: str | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Set (and turn on) a connector's schedule; ScheduleError for bad input. `tz` None keeps
    the schedule's timezone (UTC for a new one)."""
    if (cron is None) == (every is None):
        raise ScheduleError("Give either a cron expression or an interval.")
    now = now or timezone.now()
    schedule = Schedule.objects.filter(connector=connector).first() or Schedule(connector=connector)
    schedule.timezone = tz or schedule.timezone or "UTC"
    parse_timezone(schedule.timezone)
    schedule.cron = check_cron(cron) if cron is not None else ""
    schedule.interval_s = parse_interval(every) if every is not None else None
    schedule.enabled = True
    schedule.next_run = None
    schedule.next_run = next_slot(schedule, now=now)
    with transaction.atomic():
        if schedule.pk is None:
            schedule.save()
        else:  # not last_run: the worker may have just queued one
            fields = ["cron", "interval_s", "timezone", "enabled", "next_run", "updated_at"]
            schedule.save(update_fields=fields)
        details = {"schedule": schedule.describe(), "timezone": schedule.timezone}
        audit.record(
            connection=connector.connection,
            action=AuditAction.SCHEDULE_SET,
            target=connector.slug,
            details=details,
        )
    return schedule


def schedule_off(*, connector: Connector) -> Schedule | None:
    """Turn a connector's schedule off (kept, so --cron/--every can turn it on again)."""
    schedule = Schedule.objects.filter(connector=connector).first()
    if schedule is not None and schedule.enabled:
        with transaction.atomic():
            schedule.enabled = False
            schedule.next_run = None
            schedule.save(update_fields=["enabled", "next_run", "updated_at"])
            audit.record(
                connection=connector.connection,
                action=AuditAction.SCHEDULE_OFF,
                target=connector.slug,
            )
    return schedule


def when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def schedule_json(schedule: Schedule) -> dict:
    """A schedule as `manage.py schedule --list --json` and the API show it."""
    last = schedule.last_run
    return {
        "slug": schedule.connector.slug,
        "schedule": schedule.describe(),
        "cron": schedule.cron or None,
        "interval_s": schedule.interval_s,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "next_run": when(schedule.next_run),
        "last_run": {"id": last.pk, "status": last.status, "enqueued_at": when(last.enqueued_at)}
        if last
        else None,
    }


def due_schedules(now: datetime) -> QuerySet[Schedule]:
    return Schedule.objects.filter(enabled=True, next_run__lte=now).select_related("connector")


def _ingest_active(connector: Connector) -> bool:
    return (
        Run.objects.filter(connector=connector, kind=RunKind.INGEST, status__in=ACTIVE_STATUSES)
        .filter(WRITING_RUNS)
        .exists()
    )


def enqueue_due(now: datetime | None = None) -> list[Run]:
    """Queue an ingest for each due schedule whose connector has none queued or running;
    return the runs queued."""
    now = now or timezone.now()
    queued = []
    for schedule in due_schedules(now):
        if _ingest_active(schedule.connector):
            continue  # stays due: it runs once the active ingest has finished
        try:
            run = _enqueue_one(schedule, now=now)
        except Exception:  # one broken connector must not stop the others
            logger.exception("Scheduled ingest of %s failed to queue.", schedule.connector.slug)
            # Skip this slot rather than retry (and log) every tick until someone looks.
            Schedule.objects.filter(pk=schedule.pk, next_run=schedule.next_run).update(
                next_run=next_slot(schedule, now=now)
            )
            continue
        if run is not None:
            queued.append(run)
    return queued


def _enqueue_one(schedule: Schedule, *, now: datetime) -> Run | None:
    try:
        with transaction.atomic():
            # Claim the slot with a conditional update: another worker may have got there first.
            claimed = Schedule.objects.filter(
                pk=schedule.pk, enabled=True, next_run=schedule.next_run
            ).update(next_run=next_slot(schedule, now=now))
            if not claimed:
                return None
            run = tasks.ingest_enqueue(connector=schedule.connector)
            run.parameters = {**run.parameters, "scheduled": True}
            run.save(update_fields=["parameters"])
            Schedule.objects.filter(pk=schedule.pk).update(last_run=run)
    except IngestAlreadyActive:
        return None  # queued by someone else since we looked: the slot stays due (rolled back)
    logger.info("Queued scheduled ingest #%d of %s.", run.pk, schedule.connector.slug)
    return run


class ScheduleTicker(PeriodicWork):
    """Call enqueue_due every `interval_s` in a daemon thread while a block runs."""

    thread_name = "schedule-ticker"
    failure = "Queuing scheduled ingests failed; retrying later."

    def __init__(self, *, interval_s: float = TICK_S) -> None:
        super().__init__()
        self.interval_s = interval_s

    def wait_s(self) -> float:
        return self.interval_s

    def work(self) -> None:
        enqueue_due()
