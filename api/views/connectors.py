"""/api/v1/connectors: list, get, create, update (code, interface, parser, packages), versions."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from api.views.access import connection_visible, connector_visible
from api.views.schemas import (
    ConnectorCreateIn,
    ConnectorOut,
    ConnectorUpdateIn,
    VersionDetailOut,
    VersionOut,
)
from connections import services
from connections.models import CodeVersion, Connection, Connector
from connections.selectors import can_use, version_for_connector

router = Router(tags=["connectors"])


def connector_out(connector: Connector, user) -> dict:
    latest = connector.latest_version
    return {
        "slug": connector.slug,
        "name": connector.name,
        "connection": connector.connection.slug,
        "interface": connector.interface,
        "parser": connector.parser,
        "parser_options": connector.parser_options or {},
        "packages": connector.packages,
        "code": connector.code,
        "latest_version": latest.number if latest else None,
        "can_use": can_use(user, connector.connection),
        "created_at": connector.created_at,
        "updated_at": connector.updated_at,
    }


def version_out(version: CodeVersion) -> dict:
    return {
        "number": version.number,
        "interface": version.interface,
        "parser": version.parser,
        "parser_options": version.parser_options or {},
        "packages": version.packages,
        "fingerprint": version.fingerprint,
        "author": version.author.get_username() if version.author else None,
        "created_at": version.created_at,
        "code": version.code,
    }


@router.get("", response=list[ConnectorOut])
def connector_list(request: HttpRequest, connection: str | None = None):
    """The connectors you may see (`connection`: of that connection only)."""
    connectors = Connector.objects.filter(
        connection__in=Connection.objects.visible_to(request.auth)
    ).select_related("connection")
    if connection:
        connectors = connectors.filter(connection__slug=connection)
    return [connector_out(c, request.auth) for c in connectors.order_by("name", "slug")]


@router.get("/{slug}", response=ConnectorOut)
def connector_get(request: HttpRequest, slug: str):
    return connector_out(connector_visible(request.auth, slug), request.auth)


@router.post("", response={201: ConnectorOut})
def connector_create(request: HttpRequest, payload: ConnectorCreateIn):
    """Create a connector (and its first version) on a connection you may use."""
    connection = connection_visible(request.auth, payload.connection, use=True)
    connector = services.connector_create(
        connection=connection,
        name=payload.name,
        code=payload.code,
        slug=payload.slug,
        interface=payload.interface,
        parser=payload.parser,
        parser_options=payload.parser_options,
        packages=payload.packages,
        author=request.auth,
    )
    return Status(201, connector_out(connector, request.auth))


@router.patch("/{slug}", response=ConnectorOut)
def connector_update(request: HttpRequest, slug: str, payload: ConnectorUpdateIn):
    """Save new code, interface, parser (and options) or packages: a new version when any
    changed. Fields left out keep their saved values."""
    connector = connector_visible(request.auth, slug, use=True)
    parser = connector.parser if payload.parser is None else payload.parser
    services.connector_save_code(
        connector=connector,
        code=connector.code if payload.code is None else payload.code,
        packages=connector.packages if payload.packages is None else payload.packages,
        interface=payload.interface or connector.interface,
        parser=parser,
        parser_options=connector.parser_options_for(parser, payload.parser_options),
        author=request.auth,
    )
    return connector_out(connector, request.auth)


@router.get("/{slug}/versions", response=list[VersionOut])
def version_list(request: HttpRequest, slug: str):
    """The connector's saved versions, newest first."""
    connector = connector_visible(request.auth, slug)
    versions = connector.versions.select_related("author").order_by("-number")
    return [version_out(version) for version in versions]


@router.get("/{slug}/versions/{number}", response=VersionDetailOut)
def version_get(request: HttpRequest, slug: str, number: int):
    connector = connector_visible(request.auth, slug)
    return version_out(version_for_connector(connector, number))
