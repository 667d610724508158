"""Access rules of the API: those of the pages, except that what a user may not see is 404.

A user who may only view a connection gets 403 when they try to run or change it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from connections.models import Connection, Connector
from connections.selectors import connection_for_user, connector_for_user, require_access
from runs.models import Run
from runs.selectors import runs_for_user


def connection_visible(user, slug: str, *, use: bool = False) -> Connection:
    connection = _seen(connection_for_user, user, slug, "connection")
    if use:
        require_access(user, connection, use=True)  # PermissionDenied: 403
    return connection


def connector_visible(user, slug: str, *, use: bool = False) -> Connector:
    connector = _seen(connector_for_user, user, slug, "connector")
    if use:
        require_access(user, connector.connection, use=True)  # PermissionDenied: 403
    return connector


def _seen(find, user, slug: str, what: str):
    """`find(user, slug)`, with what the user may not see answered 404."""
    try:
        return find(user, slug)
    except PermissionDenied:
        raise Http404(f"No such {what}.") from None


def run_visible(user, run_id: int, *, use: bool = False) -> Run:
    run = (
        runs_for_user(user)
        .select_related("connector__connection", "code_version", "user")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise Http404("No such run.")
    if use:
        connector_for_user(user, run.connector.slug, use=True)  # PermissionDenied: 403
    return run
