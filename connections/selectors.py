"""Reads of connections, scoped to what a user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from connections.models import Connection


def connections_for_user(user) -> QuerySet[Connection]:
    """Connections visible to `user`, with their connectors."""
    return Connection.objects.visible_to(user).prefetch_related("connectors")
