"""/api/v1: connectors' ingest schedules (as `manage.py schedule`)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.errors import HttpError

from api.views.access import connector_visible
from api.views.schemas import ScheduleIn, ScheduleOut
from connections.selectors import connections_for_user
from runs.models import Schedule
from runs.schedules import ScheduleError, schedule_json, schedule_off, schedule_set

router = Router(tags=["schedules"])


@router.get("/schedules", response=list[ScheduleOut])
def schedule_list(request: HttpRequest):
    """The schedules of every connector you may see, on or off."""
    schedules = Schedule.objects.filter(
        connector__connection__in=connections_for_user(request.auth)
    ).select_related("connector", "last_run")
    return [schedule_json(schedule) for schedule in schedules.order_by("connector__slug")]


@router.get("/connectors/{slug}/schedule", response=ScheduleOut)
def schedule_get(request: HttpRequest, slug: str):
    connector = connector_visible(request.auth, slug)
    schedule = Schedule.objects.filter(connector=connector).select_related("last_run").first()
    if schedule is None:
        raise HttpError(404, f"{slug} has no schedule.")
    return schedule_json(schedule)


@router.put("/connectors/{slug}/schedule", response=ScheduleOut)
def schedule_put(request: HttpRequest, slug: str, payload: ScheduleIn):
    """Set and turn on the schedule: `cron` or `every`, and a timezone."""
    connector = connector_visible(request.auth, slug, use=True)
    try:
        schedule = schedule_set(
            connector=connector, cron=payload.cron, every=payload.every, tz=payload.timezone
        )
    except ScheduleError as exc:
        raise HttpError(400, str(exc)) from None
    return schedule_json(schedule)


@router.delete("/connectors/{slug}/schedule", response=ScheduleOut)
def schedule_delete(request: HttpRequest, slug: str):
    """Turn the schedule off (it is kept: PUT turns it on again)."""
    connector = connector_visible(request.auth, slug, use=True)
    schedule = schedule_off(connector=connector)
    if schedule is None:
        raise HttpError(404, f"{slug} has no schedule.")
    return schedule_json(schedule)
