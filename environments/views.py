"""Package file uploads and environment rebuilds, from a connection's page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from connections.selectors import connection_for_user
from connections.views import connection_page_context
from environments import services, tasks
from environments.forms import PackageFileForm
from environments.selectors import package_file_for_connection
from environments.templatetags.environment_tags import connection_environments_context


@require_POST
def package_file_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a package file to a connection (anyone who may edit the connection)."""
    connection = connection_for_user(request.user, slug, use=True)
    form = PackageFileForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            package_file = services.package_file_add(
                connection=connection,
                filename=upload.name,
                chunks=upload.chunks(),
                uploaded_by=request.user,
            )
        except ValidationError as exc:
            form.add_error("file", exc)
        else:
            messages.success(
                request,
                f"Uploaded {package_file.filename}: it is installed when a connector of this "
                "connection next runs (its environment is built then).",
            )
            return redirect("connection_detail", slug=connection.slug)
    # The connection page again, its upload form showing the errors.
    context = {**connection_page_context(request, connection), "upload_form": form}
    return render(request, "connections/connection_detail.html", context, status=400)


@require_POST
def package_file_delete(request: HttpRequest, slug: str, file_id: int) -> HttpResponse:
    """Remove an uploaded package file from a connection."""
    connection = connection_for_user(request.user, slug, use=True)
    package_file = package_file_for_connection(connection, file_id)
    services.package_file_delete(package_file=package_file)
    messages.success(request, f"Removed {package_file.filename}.")
    return redirect("connection_detail", slug=connection.slug)


@require_POST
def environment_rebuild(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """Queue a rebuild of one of the connection's environments for the worker."""
    connection = connection_for_user(request.user, slug, use=True)
    try:
        tasks.environment_rebuild_enqueue(connection=connection, key=key)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rebuilding environment {key[:12]} in the background.")
    return redirect("connection_detail", slug=connection.slug)


@require_GET
def connection_environments(request: HttpRequest, slug: str) -> HttpResponse:
    """The connection page's package section alone: it refreshes itself while a build runs."""
    connection = connection_for_user(request.user, slug)
    context = connection_environments_context(connection)
    return render(request, "environments/connection_environments.html", context)
