"""Pages for connections, connectors, the code editor and code versions."""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import BadRequest, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connections import audit, export_format, services
from connections.forms import (
    ConnectionForm,
    ConnectorCodeForm,
    ConnectorCreateForm,
    ConnectorUploadForm,
)
from connections.models import Connection
from connections.selectors import (
    audit_events,
    can_change_credentials,
    can_use,
    connection_for_user,
    connections_for_user,
    connector_for_user,
    shown_credentials,
    version_for_connector,
)
from connections.templates_gallery import STARTERS, STARTERS_BY_KEY
from connector_engine.contract import check_code
from connectors_site import engine_config

AUDIT_PAGE_SIZE = 100


@sensitive_post_parameters()  # error reports leave out what was posted: it may hold credentials
@require_http_methods(["GET", "POST"])
def connection_create(request: HttpRequest) -> HttpResponse:
    """Create a connection owned by the current user."""
    form = ConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        connection = services.connection_create(
            name=data["name"],
            owner=request.user,
            description=data["description"],
            credentials=form.credentials_change() or "",
            credential_changes=form.credential_field_changes(),
            packages=data["packages"],
            library_code=data["library_code"],
            network_access=data["network_access"],
            shared_with=data["shared_with"],
            viewers=data["viewers"],
        )
        messages.success(request, f"Created connection {connection.name}.")
        return redirect("connection_detail", slug=connection.slug)
    return render(request, "connections/connection_form.html", {"form": form})


@require_GET
def connection_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show a connection and its connectors (the template's package section is rendered by the
    environments app's `connection_environments` tag)."""
    connection = connection_for_user(request.user, slug)
    context = connection_page_context(request, connection)
    return render(request, "connections/connection_detail.html", context)


@require_GET
def connection_audit(request: HttpRequest, slug: str) -> HttpResponse:
    """The connection's audit log: who changed what, when and how, newest first (404 for a
    connection the user may not see: the log does not say it exists)."""
    connection = get_object_or_404(connections_for_user(request.user), slug=slug)
    page = Paginator(audit_events(connection), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(event, audit.describe(event)) for event in page]
    context = {"connection": connection, "page": page, "rows": rows}
    return render(request, "connections/connection_audit.html", context)


def connection_page_context(request: HttpRequest, connection: Connection) -> dict[str, Any]:
    """The connection page's context, for every view that renders the page."""
    return {
        "connection": connection,
        "connectors": connection.connectors.all(),
        "can_change_credentials": can_change_credentials(request.user, connection),
        # Everyone who sees the page sees fields that are not secret: they are configuration.
        "credentials": shown_credentials(connection),
    }


@sensitive_post_parameters()
@require_http_methods(["GET", "POST"])
def connection_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Edit a connection; only its owner and staff see the credentials and sharing fields."""
    connection = connection_for_user(request.user, slug, use=True)
    allowed = can_change_credentials(request.user, connection)
    form = ConnectionForm(request.POST or None, instance=connection, allow_credentials=allowed)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.connection_update(
            connection=connection,
            name=data["name"],
            description=data["description"],
            packages=data["packages"],
            library_code=data["library_code"],
            shared_with=data.get("shared_with") if allowed else None,
            viewers=data.get("viewers") if allowed else None,
            network_access=data.get("network_access") if allowed else None,
            credentials=form.credentials_change(),
            credential_changes=form.credential_field_changes(),
        )
        messages.success(request, "Saved.")
        return redirect("connection_detail", slug=connection.slug)
    return render(
        request, "connections/connection_form.html", {"form": form, "connection": connection}
    )


@require_http_methods(["GET", "POST"])
def connector_create(request: HttpRequest, slug: str) -> HttpResponse:
    """Create a connector in a connection from one of the starting templates."""
    connection = connection_for_user(request.user, slug, use=True)
    form = ConnectorCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        starter = STARTERS_BY_KEY[form.cleaned_data["starter"]]
        connector = services.connector_create(
            connection=connection,
            name=form.cleaned_data["name"],
            code=starter.code,
            interface=starter.interface,
            parser=starter.parser,
            author=request.user,
        )
        return redirect("connector_editor", slug=connector.slug)
    return render(
        request,
        "connections/connector_create.html",
        {"form": form, "connection": connection, "starters": STARTERS},
    )


@require_GET
def connector_editor(request: HttpRequest, slug: str) -> HttpResponse:
    """The editor: code, preview buttons and result panels."""
    connector = connector_for_user(request.user, slug)
    form = ConnectorCodeForm(initial=ConnectorCodeForm.initial_for(connector))
    allowed = can_use(request.user, connector.connection)
    spark = None
    if connector.interface == "spark":
        if allowed:  # who may run it will need Spark: start it now, in the background
            engine_config.spark_start()
        spark = engine_config.spark_status()
    return render(
        request,
        "connections/editor.html",
        {
            "connector": connector,
            "connection": connector.connection,
            "can_use": allowed,
            "form": form,
            "latest_version": connector.latest_version,
            "runs": connector.runs.select_related("user", "code_version")[:10],
            "preview_bounds": engine_config.preview_bounds(),
            # Which Spark a spark connector uses and whether it is up or starting (probed
            # here, not while the template renders; spark_status polls it).
            "spark": spark,
            "editor_config": {
                "saveUrl": reverse("connector_save", args=[connector.slug]),
                "checkUrl": reverse("connector_check", args=[connector.slug]),
                "listUrl": reverse("runs:preview", args=[connector.slug, "list"]),
            },
        },
    )


@require_GET
def spark_status(request: HttpRequest) -> HttpResponse:
    """The editor's Spark status line (polled while the server starts)."""
    context = {"spark": engine_config.spark_status()}
    return render(request, "connections/_spark_status.html", context)


@require_POST
def connector_save(request: HttpRequest, slug: str) -> JsonResponse:
    """Save the editor's code; a change makes a new version."""
    connector = connector_for_user(request.user, slug, use=True)
    form = ConnectorCodeForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"saved": False, "errors": form.errors.get_json_data()}, status=400)
    data = form.cleaned_data
    version = services.connector_save_code(
        connector=connector,
        code=data["code"],
        packages=data["packages"],
        interface=data["interface"],
        parser=data["parser"],
        parser_options=connector.parser_options_for(data["parser"], data["parser_options"]),
        author=request.user,
    )
    latest = version or connector.latest_version
    return JsonResponse(
        {
            "saved": True,
            "new_version": version is not None,
            "version": latest.number if latest else None,
            "message": f"Saved as version {version.number}." if version else "No changes.",
        }
    )


@require_POST
def connector_check(request: HttpRequest, slug: str) -> JsonResponse:
    """Check the editor's code against the contract, for the lint gutter (nothing runs)."""
    connector_for_user(request.user, slug)
    interface = request.POST.get("interface", "pandas")
    problems = check_code(request.POST.get("code", ""), interface)
    return JsonResponse({"problems": [problem.to_dict() for problem in problems]})


@require_GET
def connector_versions(request: HttpRequest, slug: str) -> HttpResponse:
    """List a connector's versions and show the diff between any two (default: the last two)."""
    connector = connector_for_user(request.user, slug)
    versions = list(connector.versions.select_related("author"))
    older = newer = None
    if len(versions) >= 2:
        older = version_for_connector(connector, _int_param(request, "from", versions[1].number))
        newer = version_for_connector(connector, _int_param(request, "to", versions[0].number))
    return render(
        request,
        "connections/versions.html",
        {
            "connector": connector,
            "versions": versions,
            "older": older,
            "newer": newer,
            "diff_lines": version_diff(older, newer) if older and newer else [],
        },
    )


@require_POST
def connector_revert(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Make a new version with an earlier version's code."""
    connector = connector_for_user(request.user, slug, use=True)
    version = version_for_connector(connector, number)
    latest = services.connector_revert(connector=connector, version=version, author=request.user)
    messages.success(request, f"Reverted to version {number} as version {latest.number}.")
    return redirect("connector_editor", slug=connector.slug)


@require_GET
def connector_download(request: HttpRequest, slug: str) -> HttpResponse:
    """The saved connector as an export file (manage.py export_connector's)."""
    connector = connector_for_user(request.user, slug)
    text = export_format.render(services.connector_export(connector=connector))
    response = HttpResponse(text, content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{connector.slug}.py"'
    return response


@require_POST
def connector_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Save an uploaded export file as this connector's new version (its slug and name stay)."""
    connector = connector_for_user(request.user, slug, use=True)
    form = ConnectorUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for error in form.errors.get("file", []):
            messages.error(request, f"Not uploaded: {error}")
        return redirect("connector_editor", slug=connector.slug)
    try:
        _, version, _ = services.connector_import(
            connection=connector.connection,
            export=form.cleaned_data["file"],
            slug=connector.slug,
            author=request.user,
        )
    except ValidationError as exc:
        messages.error(request, f"Not uploaded: {'; '.join(exc.messages)}")
        return redirect("connector_editor", slug=connector.slug)
    if version is None:
        messages.info(request, "Uploaded: the file is the same as the saved code.")
    else:
        messages.success(request, f"Uploaded as version {version.number}.")
    return redirect("connector_editor", slug=connector.slug)


def version_diff(older, newer) -> list[tuple[str, str]]:
    """Return (kind, text) lines of a unified diff of two versions' code and settings."""

    def describe(version) -> list[str]:
        header = [f"# interface: {version.interface} {version.parser}".rstrip()]
        if version.parser_options:
            options = json.dumps(version.parser_options, sort_keys=True)
            header.append(f"# parser options: {options}")
        packages = [f"# package: {line}" for line in version.packages.splitlines() if line]
        return [*header, *packages, *version.code.splitlines()]

    lines = difflib.unified_diff(
        describe(older), describe(newer), f"version {older.number}", f"version {newer.number}",
        lineterm="",
    )  # fmt: skip
    kinds = {"+": "added", "-": "removed", "@": "hunk"}
    return [
        ("header" if line[:3] in ("---", "+++") else kinds.get(line[:1], "context"), line)
        for line in lines
    ]


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    try:
        return int(request.GET.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be a version number") from None
