"""Reads of runs, scoped to what a user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from connections.models import Connection
from runs.models import Run


def runs_for_user(user) -> QuerySet[Run]:
    """Runs of connectors whose connection `user` may see."""
    return Run.objects.filter(connector__connection__in=Connection.objects.visible_to(user))


def recent_runs_for_user(user) -> QuerySet[Run]:
    """The user's visible runs, newest first, with their connectors."""
    return runs_for_user(user).select_related("connector").order_by("-enqueued_at")
