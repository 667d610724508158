"""The schedule block of the connector editor: the schedule, its next and last scheduled run.

The editor (templates/connections/editor.html) loads this library, so the connections app shows
schedules without importing this app.
"""

from __future__ import annotations

from typing import Any

from django import template

from connections.models import Connector
from runs.models import Schedule, format_interval

register = template.Library()


@register.inclusion_tag("runs/_schedule.html", takes_context=True)
def connector_schedule(context: template.Context, connector: Connector) -> dict[str, Any]:
    """Render the connector's schedule (or that it has none), with a form for who may change it."""
    return connector_schedule_context(connector, can_use=bool(context.get("can_use")))


def connector_schedule_context(
    connector: Connector, *, can_use: bool, error: str = "", entered: str = ""
) -> dict[str, Any]:
    """The schedule block's context (the tag's, and the view that sets the schedule)."""
    schedule = Schedule.objects.filter(connector=connector).select_related("last_run").first()
    if not entered and schedule is not None:
        entered = schedule.cron or format_interval(schedule.interval_s or 0)
    return {
        "connector": connector,
        "schedule": schedule,
        "can_use": can_use,
        "error": error,
        "entered": entered,
        "timezone": schedule.timezone if schedule else "UTC",
    }
