"""/api/v1/connections: list, get, create, update. Credentials are write-only: only the fields
that are not secret are shown (as every user who sees the connection sees them on its page)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Router, Status
from ninja.errors import HttpError

from api.views.access import connection_visible
from api.views.schemas import (
    ConnectionCreateIn,
    ConnectionOut,
    ConnectionUpdateIn,
    CredentialFieldIn,
    SharingIn,
    SharingOut,
)
from connections import services
from connections.models import Connection
from connections.selectors import (
    can_change_credentials,
    can_use,
    connections_for_user,
    shown_credentials,
)

router = Router(tags=["connections"])


def connection_out(connection: Connection, user) -> dict:
    shown = shown_credentials(connection)
    return {
        "slug": connection.slug,
        "name": connection.name,
        "description": connection.description,
        "owner": connection.owner.get_username() if connection.owner else None,
        "packages": connection.packages,
        "library_code": connection.library_code,
        "network_access": connection.network_access,
        "can_use": can_use(user, connection),
        "credentials": {
            "kind": shown.kind,
            "fields": [
                {"name": f.name, "secret": f.secret, "value": f.value} for f in shown.fields
            ],
        },
        "connectors": [connector.slug for connector in connection.connectors.all()],
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
    }


@router.get("", response=list[ConnectionOut])
def connection_list(request: HttpRequest):
    """The connections you may see."""
    connections = connections_for_user(request.auth).select_related("owner").order_by("name")
    return [connection_out(connection, request.auth) for connection in connections]


@router.get("/{slug}", response=ConnectionOut)
def connection_get(request: HttpRequest, slug: str):
    return connection_out(connection_visible(request.auth, slug), request.auth)


def field_changes(fields: list[CredentialFieldIn]) -> list[services.CredentialFieldChange]:
    return [
        services.CredentialFieldChange(
            name=field.name, text=field.value, secret=field.secret, remove=field.remove
        )
        for field in fields
    ]


@router.post("", response={201: ConnectionOut})
def connection_create(request: HttpRequest, payload: ConnectionCreateIn):
    """Create a connection that you own."""
    try:
        connection = services.connection_create(
            name=payload.name,
            owner=request.auth,
            slug=payload.slug,
            description=payload.description,
            credentials=payload.credentials,
            credential_changes=field_changes(payload.credential_fields),
            packages=payload.packages,
            library_code=payload.library_code,
            network_access=payload.network_access,
        )
    except ValueError as exc:  # a credential field that cannot change so
        raise HttpError(400, str(exc)) from None
    return Status(201, connection_out(connection, request.auth))


@router.patch("/{slug}", response=ConnectionOut)
def connection_update(request: HttpRequest, slug: str, payload: ConnectionUpdateIn):
    """Change a connection you may use; its credentials and network access: owner and staff."""
    connection = connection_visible(request.auth, slug, use=True)
    owner_only = (
        payload.credentials is not None
        or payload.credential_fields
        or payload.network_access is not None
    )
    if owner_only and not can_change_credentials(request.auth, connection):
        raise PermissionDenied("Only the connection's owner and staff change its credentials.")
    try:
        services.connection_update(
            connection=connection,
            name=connection.name if payload.name is None else payload.name,
            description=(
                connection.description if payload.description is None else payload.description
            ),
            packages=connection.packages if payload.packages is None else payload.packages,
            library_code=(
                connection.library_code if payload.library_code is None else payload.library_code
            ),
            network_access=payload.network_access,
            credentials=payload.credentials,
            credential_changes=field_changes(payload.credential_fields),
        )
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None
    return connection_out(connection, request.auth)


def sharing_out(connection: Connection) -> dict:
    return {
        "use": sorted(group.name for group in connection.shared_with.all()),
        "view": sorted(group.name for group in connection.viewers.all()),
    }


def _groups(names: list[str] | None) -> list[Group] | None:
    if names is None:
        return None
    groups = list(Group.objects.filter(name__in=names))
    unknown = sorted(set(names) - {group.name for group in groups})
    if unknown:
        raise HttpError(400, f"No such group: {', '.join(unknown)}.")
    return groups


@router.get("/{slug}/sharing", response=SharingOut)
def sharing_get(request: HttpRequest, slug: str):
    """The groups the connection is shared with, to use and to view."""
    return sharing_out(connection_visible(request.auth, slug))


@router.put("/{slug}/sharing", response=SharingOut)
def sharing_put(request: HttpRequest, slug: str, payload: SharingIn):
    """Share the connection with groups (owner and staff): to use (they can read the
    credentials through their code) or to view."""
    connection = connection_visible(request.auth, slug)
    if not can_change_credentials(request.auth, connection):
        raise PermissionDenied("Only the connection's owner and staff change its sharing.")
    services.connection_update(
        connection=connection,
        name=connection.name,
        description=connection.description,
        packages=connection.packages,
        library_code=connection.library_code,
        shared_with=_groups(payload.use),
        viewers=_groups(payload.view),
    )
    return sharing_out(connection)
