"""The audit log: who changed what on a connection, when, and by which path.

Services call `record` (or `record_connection_changes`) inside the transaction that makes the
change, so every path (pages, admin, API, command line) is recorded once. Who acted comes from
the context: `AuditActorMiddleware` names the request's user and path (page, admin or API), a
management command wraps its work in `acting(via="cli", name=...)`; anything else is "system".

Credentials are recorded by field name only. Their values, secret or not, are never stored:
a snapshot holds a digest of each value, in memory, only to tell which fields changed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from connections.crypto import CredentialsUnreadable
from connections.models import AuditAction, AuditEvent, AuditVia, Connection
from connector_engine.credentials import credentials_object

# Pseudo field names for credentials that are not a JSON object of fields.
WHOLE_VALUE = "(one value)"
UNREADABLE = "(unreadable)"


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and by which path."""

    user: Any = None
    via: str = AuditVia.SYSTEM
    name: str = ""  # the command for the command line; the user's name otherwise

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.user.get_username() if self.user is not None else "system"


_actor: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)
_request: ContextVar[Any] = ContextVar("audit_request", default=None)


@contextmanager
def acting(*, via: str, user: Any = None, name: str = "") -> Iterator[None]:
    """Record changes made inside the block as made by `user` (or `name`) through `via`."""
    token = _actor.set(Actor(user=user, via=via, name=name))
    try:
        yield
    finally:
        _actor.reset(token)


@contextmanager
def serving(request) -> Iterator[None]:
    """Record changes made while answering `request` as its user's (see `actor_of_request`)."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


class AuditActorMiddleware:
    """Makes the request's user and path the actor of the changes its view makes."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        with serving(request):
            return self.get_response(request)


def actor_of_request(request) -> Actor:
    """The user (an API token's, or the session's) and the path: admin, API or page.

    Resolved when a change is recorded, because an API token is checked inside the view."""
    user = getattr(request, "auth", None)
    if not getattr(user, "is_authenticated", False):
        user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        user = None
    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match else ""
    if namespace == "admin":
        via = AuditVia.ADMIN
    elif namespace.startswith("api"):
        via = AuditVia.API
    else:
        via = AuditVia.PAGE
    return Actor(user=user, via=via)


def current_actor() -> Actor:
    if (actor := _actor.get()) is not None:
        return actor
    if (request := _request.get()) is not None:
        return actor_of_request(request)
    return Actor()


def record(
    *, connection: Connection, action: str, target: str = "", details: dict | None = None
) -> AuditEvent:
    """Record one change to `connection` by the current actor. Never pass a credential value."""
    actor = current_actor()
    return AuditEvent.objects.create(
        connection=connection,
        connection_slug=connection.slug,
        actor=actor.user,
        actor_name=actor.label[:150],
        via=actor.via,
        action=action,
        target=target[:255],
        details=details or {},
    )


# ---------------------------------------------------------------- connection snapshots


@dataclass(frozen=True)
class ConnectionState:
    """What of a connection the audit log compares: digests of credential values, never the
    values; library code, packages and shares."""

    credentials: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name: (digest, secret)
    library_code: str = ""
    packages: str = ""
    shares: dict[str, str] = field(default_factory=dict)  # group name: "use" or "view"
    network_access: bool = True


EMPTY = ConnectionState()


def connection_state(connection: Connection) -> ConnectionState:
    """A connection's state as the audit log compares it (its shares as saved)."""
    shares: dict[str, str] = {}
    if connection.pk is not None:
        shares = {group.name: "view" for group in connection.viewers.all()}
        shares |= {group.name: "use" for group in connection.shared_with.all()}
    return ConnectionState(
        credentials=_credential_digests(connection),
        library_code=connection.library_code,
        packages=connection.packages,
        shares=shares,
        network_access=connection.network_access,
    )


def saved_connection_state(connection: Connection) -> ConnectionState:
    """The state of the connection as stored (before a form changed the instance)."""
    if connection.pk is None:
        return EMPTY
    stored = Connection.objects.filter(pk=connection.pk).first()
    return connection_state(stored) if stored is not None else EMPTY


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _credential_digests(connection: Connection) -> dict[str, tuple[str, bool]]:
    if not connection.credentials_token:
        return {}
    try:
        text = connection.decrypted_credentials()
        if credentials_object(text) is None:
            return {WHOLE_VALUE: (_digest(text), True)}
        return {f.name: (_digest(f.text), f.secret) for f in connection.credential_fields()}
    except CredentialsUnreadable:
        return {UNREADABLE: (_digest(connection.credentials_token), True)}


def record_connection_changes(
    *, before: ConnectionState, connection: Connection, created: bool = False
) -> None:
    """Record what changed on `connection` since `before`: credentials (field names),
    library code, packages and shares."""
    after = connection_state(connection)
    if created:
        record(connection=connection, action=AuditAction.CONNECTION_CREATED)
    if details := credential_changes(before.credentials, after.credentials):
        record(connection=connection, action=AuditAction.CREDENTIALS_CHANGED, details=details)
    if before.library_code != after.library_code:
        lines = {
            "lines_before": len(before.library_code.splitlines()),
            "lines_after": len(after.library_code.splitlines()),
        }
        record(connection=connection, action=AuditAction.LIBRARY_CHANGED, details=lines)
    if details := package_changes(before.packages, after.packages):
        record(connection=connection, action=AuditAction.PACKAGES_CHANGED, details=details)
    if before.network_access != after.network_access:
        details = {"network_access": after.network_access}
        record(connection=connection, action=AuditAction.NETWORK_CHANGED, details=details)
    for group in sorted(before.shares.keys() | after.shares.keys()):
        old, new = before.shares.get(group), after.shares.get(group)
        if old == new:
            continue
        if old is None:
            action, details = AuditAction.SHARE_ADDED, {"level": new}
        elif new is None:
            action, details = AuditAction.SHARE_REMOVED, {"level": old}
        else:
            action, details = AuditAction.SHARE_CHANGED, {"from": old, "to": new}
        record(connection=connection, action=action, target=group, details=details)


def credential_changes(
    before: dict[str, tuple[str, bool]], after: dict[str, tuple[str, bool]]
) -> dict[str, list[str]]:
    """Which credential fields were added, changed, removed or made (not) secret: names only."""
    both = [name for name in after if name in before]
    changes = {
        "added": [name for name in after if name not in before],
        "changed": [name for name in both if before[name][0] != after[name][0]],
        "removed": [name for name in before if name not in after],
        "made_secret": [name for name in both if after[name][1] and not before[name][1]],
        "made_not_secret": [name for name in both if before[name][1] and not after[name][1]],
    }
    return {key: names for key, names in changes.items() if names}


_URL_USERINFO = re.compile(r"(://)[^/@\s]+@")


def package_changes(before: str, after: str) -> dict[str, list[str]]:
    """Requirement lines added and removed; a password in a URL is left out."""
    old, new = _requirement_lines(before), _requirement_lines(after)
    changes = {
        "added": [line for line in new if line not in old],
        "removed": [line for line in old if line not in new],
    }
    return {key: lines for key, lines in changes.items() if lines}


def _requirement_lines(text: str) -> list[str]:
    lines = (_URL_USERINFO.sub(r"\1***@", line.strip()) for line in text.splitlines())
    return [line for line in lines if line]


# ---------------------------------------------------------------- reading


def describe(event: AuditEvent) -> str:
    """An event's details in words, for the audit page and the admin."""
    details, action = event.details or {}, event.action
    if action == AuditAction.CREDENTIALS_CHANGED:
        words = {
            "added": "added",
            "changed": "changed",
            "removed": "removed",
            "made_secret": "made secret",
            "made_not_secret": "made not secret",
        }
        parts = [f"{words[k]}: {', '.join(v)}" for k, v in details.items() if k in words]
        return "fields " + "; ".join(parts) if parts else ""
    if action == AuditAction.LIBRARY_CHANGED:
        return f"{details.get('lines_before')} → {details.get('lines_after')} lines"
    if action == AuditAction.PACKAGES_CHANGED:
        parts = [f"{key}: {', '.join(lines)}" for key, lines in details.items()]
        return "; ".join(parts)
    if action == AuditAction.FILE_UPLOADED:
        replaced = " (replaced a file of that name)" if details.get("replaced") else ""
        digest = details.get("sha256", "")[:12]
        return f"{details.get('size_bytes')} bytes, sha256 {digest}…{replaced}"
    if action in (AuditAction.SHARE_ADDED, AuditAction.SHARE_REMOVED):
        return f"level: {details.get('level')}"
    if action == AuditAction.SHARE_CHANGED:
        return f"{details.get('from')} → {details.get('to')}"
    if action == AuditAction.NETWORK_CHANGED:
        return "on" if details.get("network_access") else "off: code and builds run offline"
    if action == AuditAction.SCHEDULE_SET:
        return f"{details.get('schedule')} ({details.get('timezone')})"
    if "version" in details:
        text = f"version {details['version']}"
        if "from_version" in details:
            text += f", the code of version {details['from_version']}"
        if details.get("created") is False:
            text += " of an existing connector"
        return text
    return ""
