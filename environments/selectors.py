"""Reads of package files and environments, for a connection or connector the caller may see."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import Http404

from connections.models import Connection, Connector
from connector_engine.environments.requirements import RequirementsError
from connector_engine.environments.spec import EnvironmentSpec, PackageFileRef, environment_spec
from environments.models import Environment, PackageFile


def connector_environment_spec(
    connector: Connector, packages: str | None = None
) -> EnvironmentSpec:
    """What the connector's environment holds: the connection's and its own requirements (or
    `packages` instead of its own: the editor's, saved or not) and the connection's uploaded
    package files, built offline when the connection has no network access. Raises
    RequirementsError on invalid text."""
    connection = connector.connection
    files = [
        PackageFileRef(f.filename, f.sha256, str(f.storage_path))
        for f in connection.package_files.all()
    ]
    own = connector.packages if packages is None else packages
    return environment_spec([connection.packages, own], files, network=connection.network_access)


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


def package_files_for_connection(connection: Connection) -> QuerySet[PackageFile]:
    """The connection's uploaded package files, by name, with who uploaded them."""
    return connection.package_files.select_related("uploaded_by")


def package_file_for_connection(connection: Connection, file_id: int) -> PackageFile:
    """One of the connection's uploaded package files, or 404."""
    package_file = connection.package_files.filter(pk=file_id).first()
    if package_file is None:
        raise Http404("No such package file.")
    return package_file
