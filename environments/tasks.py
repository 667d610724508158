"""Background tasks of environments (django-tasks), executed by `manage.py worker`.

Package builds run user code (sdists' build code) for as long as pip takes: never in a web
request. A page that needs an environment not built yet starts its build here and says so.
Enqueueing lives here too: a task calls services, so services never import tasks.
"""

from __future__ import annotations

from django_tasks import task

from connections.models import Connection, Connector
from connector_engine.environments.requirements import RequirementsError
from environments import services
from environments.selectors import connector_environment_spec
from environments.services import ConnectorEnvironment


@task()
def environment_build(connector_id: int, force: bool = False, packages: str | None = None) -> str:
    """Build (or with `force`, rebuild) a connector's environment, with `packages` as its own
    when given (the editor's, saved or not); return "ok" or "failed"."""
    connector = Connector.objects.select_related("connection").get(pk=connector_id)
    if force:
        spec = connector_environment_spec(connector, packages)
        outcome = services.environment_ensure(spec=spec, force=True)
        return "ok" if outcome.ok else "failed"
    built = services.connector_environment_ensure(connector=connector, packages=packages)
    return "ok" if built.ok else "failed"


def connector_environment_start(
    *, connector: Connector, packages: str | None = None
) -> ConnectorEnvironment:
    """The connector's environment (with `packages` as its own, when given: the editor's) if it
    is built (or failed to); otherwise its build is queued for the worker (once) and the answer
    says it is being built."""
    current = services.connector_environment_current(connector=connector, packages=packages)
    if current.building and services.environment_build_claim(
        connector=connector, packages=packages
    ):
        # Saved packages need no argument: the task reads them from the connector.
        unsaved = None if packages is None or packages == connector.packages else packages
        kwargs = {"connector_id": connector.pk}
        if unsaved is not None:
            kwargs["packages"] = unsaved
        environment_build.enqueue(**kwargs)
    return current


def environment_rebuild_enqueue(*, connection: Connection, key: str) -> None:
    """Queue a rebuild of the connection's environment `key` for the worker; ValueError when no
    connector of the connection uses it now."""
    for connector in connection.connectors.all():
        try:
            spec = connector_environment_spec(connector)
        except RequirementsError:
            continue
        if not spec.empty and spec.key == key:
            services.environment_build_claim(connector=connector)
            environment_build.enqueue(connector_id=connector.pk, force=True)
            return
    raise ValueError("No connector of this connection uses that environment now.")
