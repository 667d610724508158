"""The package section of the connection page: files, the upload form and environments.

The connection page (templates/connections/connection_detail.html) loads this library, so the
connections app shows package environments without importing this app.
"""

from __future__ import annotations

from typing import Any

from django import template

from connections.models import Connection
from environments.forms import PackageFileForm
from environments.selectors import environments_for_connection, package_files_for_connection

register = template.Library()


@register.inclusion_tag("environments/connection_environments.html", takes_context=True)
def connection_environments(context: template.Context, connection: Connection) -> dict[str, Any]:
    """Render the connection's package files, upload form (the page's, with its errors, when the
    upload view rendered it) and the environments its connectors use."""
    return connection_environments_context(connection, context.get("upload_form"))


def connection_environments_context(
    connection: Connection, upload_form: PackageFileForm | None = None
) -> dict[str, Any]:
    """The package section's context (the tag's, and the view that refreshes the section)."""
    environments = environments_for_connection(connection)
    return {
        "connection": connection,
        "package_files": package_files_for_connection(connection),
        "upload_form": upload_form or PackageFileForm(),
        "environments": environments,
        "building": any(
            use.environment is not None and use.environment.status == "building"
            for use in environments
        ),
    }
