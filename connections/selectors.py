"""Reads of connections and connectors, scoped to what a user may see."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from connections.models import CodeVersion, Connection, Connector, Environment, PackageFile
from connector_engine.environments.store import (
    EnvironmentSpec,
    PackageFileRef,
    RequirementsError,
    environment_spec,
)


def connections_for_user(user) -> QuerySet[Connection]:
    """Connections visible to `user`, with their connectors."""
    return Connection.objects.visible_to(user).prefetch_related("connectors")


def connection_for_user(user, slug: str) -> Connection:
    """The connection `slug` if `user` may see it: 404 when missing, 403 without access."""
    connection = Connection.objects.filter(slug=slug).first()
    if connection is None:
        raise Http404("No such connection.")
    _require_visible(user, connection.pk)
    return connection


def connector_for_user(user, slug: str) -> Connector:
    """The connector `slug` if `user` may see its connection: 404 when missing, else 403."""
    connector = Connector.objects.select_related("connection").filter(slug=slug).first()
    if connector is None:
        raise Http404("No such connector.")
    _require_visible(user, connector.connection_id)
    return connector


def _require_visible(user, connection_id: int) -> None:
    if not Connection.objects.visible_to(user).filter(pk=connection_id).exists():
        raise PermissionDenied("This connection is not shared with you.")


def can_change_credentials(user, connection: Connection) -> bool:
    """Only staff and the connection's owner change its credentials."""
    return user.is_staff or connection.owner_id == user.pk


def version_for_connector(connector: Connector, number: int) -> CodeVersion:
    """One version of a connector, or 404."""
    version = connector.versions.filter(number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


def connector_environment_spec(connector: Connector) -> EnvironmentSpec:
    """What the connector's environment holds: the connection's and its own requirements and
    the connection's uploaded package files. Raises RequirementsError on invalid stored text."""
    connection = connector.connection
    files = [
        PackageFileRef(f.filename, f.sha256, str(f.storage_path))
        for f in connection.package_files.all()
    ]
    return environment_spec([connection.packages, connector.packages], files)


@dataclass
class EnvironmentUse:
    """An environment as the connection page shows it: its row (None: not built yet) and the
    connectors that use it (or the requirement problem that keeps them from having one)."""

    key: str
    spec: EnvironmentSpec | None
    environment: Environment | None
    connectors: list[Connector] = field(default_factory=list)
    problem: str = ""


def environments_for_connection(connection: Connection) -> list[EnvironmentUse]:
    """The environments the connection's connectors use now, in connector order."""
    uses: dict[str, EnvironmentUse] = {}
    for connector in connection.connectors.all():
        try:
            spec = connector_environment_spec(connector)
        except RequirementsError as exc:
            key = f"invalid:{connector.pk}"
            uses[key] = EnvironmentUse(key, None, None, [connector], " ".join(exc.problems))
            continue
        if spec.empty:
            continue
        use = uses.setdefault(spec.key, EnvironmentUse(spec.key, spec, None))
        use.connectors.append(connector)
    rows = Environment.objects.in_bulk(list(uses), field_name="key")
    for key, use in uses.items():
        use.environment = rows.get(key)
    return list(uses.values())


def package_file_for_connection(connection: Connection, file_id: int) -> PackageFile:
    """One of the connection's uploaded package files, or 404."""
    package_file = connection.package_files.filter(pk=file_id).first()
    if package_file is None:
        raise Http404("No such package file.")
    return package_file
