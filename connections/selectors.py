"""Reads of connections and connectors, scoped to what a user may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from connections.crypto import CredentialsUnreadable
from connections.models import AuditEvent, CodeVersion, Connection, Connector
from connector_engine.credentials import CredentialField, credential_fields, credentials_object


def connections_for_user(user) -> QuerySet[Connection]:
    """Connections visible to `user`, with their connectors."""
    return Connection.objects.visible_to(user).prefetch_related("connectors")


def connection_for_user(user, slug: str, *, use: bool = False) -> Connection:
    """The connection `slug` if `user` may see it (with `use`: run code on it and change it):
    404 when missing, 403 without access."""
    connection = Connection.objects.filter(slug=slug).first()
    if connection is None:
        raise Http404("No such connection.")
    require_access(user, connection, use=use)
    return connection


def connector_for_user(user, slug: str, *, use: bool = False) -> Connector:
    """The connector `slug` if `user` may see its connection (with `use`: run and change it):
    404 when missing, else 403."""
    connector = Connector.objects.select_related("connection").filter(slug=slug).first()
    if connector is None:
        raise Http404("No such connector.")
    require_access(user, connector.connection, use=use)
    return connector


def can_use(user, connection: Connection) -> bool:
    """Whether `user` may run code on the connection and change it (not only view it)."""
    return Connection.objects.usable_by(user).filter(pk=connection.pk).exists()


def require_access(user, connection: Connection, *, use: bool) -> None:
    """PermissionDenied unless `user` may see the connection (with `use`: run and change it)."""
    if user.is_authenticated and (user.is_staff or connection.owner_id == user.pk):
        return  # staff and the owner may do anything: no query (every preview asks)
    connections = Connection.objects.filter(pk=connection.pk)
    if connections.usable_by(user).exists():
        return
    if not connections.visible_to(user).exists():
        raise PermissionDenied("This connection is not shared with you.")
    if use:
        raise PermissionDenied(
            "This connection is shared with you to view: you cannot run or change it."
        )


def can_change_credentials(user, connection: Connection) -> bool:
    """Only staff and the connection's owner change its credentials."""
    return user.is_staff or connection.owner_id == user.pk


def audit_events(connection: Connection) -> QuerySet[AuditEvent]:
    """A connection's audit log, newest first."""
    return connection.audit_events.select_related("actor").order_by("-at", "-pk")


def version_for_connector(connector: Connector, number: int) -> CodeVersion:
    """One version of a connector, or 404."""
    version = connector.versions.filter(number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


@dataclass(frozen=True)
class StoredCredentials:
    """A connection's credentials as its forms need them, secret values included."""

    kind: str  # "none", "fields" (a JSON object), "text" (one secret value) or "unreadable"
    fields: tuple[CredentialField, ...] = ()


@dataclass(frozen=True)
class ShownCredentialField:
    """A credential field as anyone who sees the connection sees it: a secret's name only."""

    name: str
    secret: bool
    value: str  # "" for a secret field: its value never leaves the server

    @property
    def shown_value(self) -> str:
        return "set (secret)" if self.secret else self.value


@dataclass(frozen=True)
class ShownCredentials:
    kind: str  # as StoredCredentials.kind
    fields: tuple[ShownCredentialField, ...] = ()


def stored_credentials(connection: Connection) -> StoredCredentials:
    """Decrypt a connection's credentials into fields, for the owner's and staff's forms."""
    if not connection.has_credentials:
        return StoredCredentials("none")
    try:
        text = connection.decrypted_credentials()
    except CredentialsUnreadable:
        return StoredCredentials("unreadable")
    if credentials_object(text) is None:
        return StoredCredentials("text")
    return StoredCredentials(
        "fields", tuple(credential_fields(text, connection.secret_field_names()))
    )


def shown_credentials(connection: Connection) -> ShownCredentials:
    """What every user who sees the connection may see of its credentials: names and values of
    fields that are not secret, names of secret ones."""
    stored = stored_credentials(connection)
    fields = (
        ShownCredentialField(field.name, field.secret, "" if field.secret else field.text)
        for field in stored.fields
    )
    return ShownCredentials(stored.kind, tuple(fields))
