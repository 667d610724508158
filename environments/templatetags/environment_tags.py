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
    return {
        "connection": connection,
        "package_files": package_files_for_connection(connection),
        "upload_form": context.get("upload_form") or PackageFileForm(),
        "environments": environments_for_connection(connection),
    }
