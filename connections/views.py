"""Pages for connections, connectors, the code editor and code versions."""

from __future__ import annotations

import difflib

from django.contrib import messages
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connections import services
from connections.forms import (
    ConnectionForm,
    ConnectorCodeForm,
    ConnectorCreateForm,
    PackageFileForm,
)
from connections.selectors import (
    can_change_credentials,
    connection_for_user,
    connections_for_user,
    connector_for_user,
    environments_for_connection,
    package_file_for_connection,
    version_for_connector,
)
from connections.templates_gallery import STARTERS, STARTERS_BY_KEY
from connector_engine.contract import check_code
from connectors_site import engine_config
from runs.selectors import recent_runs_for_user


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """List the user's connections, their connectors and recent runs."""
    return render(
        request,
        "connections/home.html",
        {
            "connections": connections_for_user(request.user),
            "runs": recent_runs_for_user(request.user)[:20],
        },
    )


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
            packages=data["packages"],
            library_code=data["library_code"],
            shared_with=data["shared_with"],
        )
        messages.success(request, f"Created connection {connection.name}.")
        return redirect("connection_detail", slug=connection.slug)
    return render(request, "connections/connection_form.html", {"form": form})


@require_GET
def connection_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show a connection, its connectors, package files and environments."""
    connection = connection_for_user(request.user, slug)
    return _connection_page(request, connection, PackageFileForm())


def _connection_page(
    request: HttpRequest, connection, upload_form: PackageFileForm, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "connections/connection_detail.html",
        {
            "connection": connection,
            "connectors": connection.connectors.all(),
            "can_change_credentials": can_change_credentials(request.user, connection),
            "package_files": connection.package_files.select_related("uploaded_by"),
            "upload_form": upload_form,
            "environments": environments_for_connection(connection),
        },
        status=status,
    )


@require_POST
def package_file_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a package file to a connection (anyone who may edit the connection)."""
    connection = connection_for_user(request.user, slug)
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
    return _connection_page(request, connection, form, status=400)


@require_POST
def package_file_delete(request: HttpRequest, slug: str, file_id: int) -> HttpResponse:
    """Remove an uploaded package file from a connection."""
    connection = connection_for_user(request.user, slug)
    package_file = package_file_for_connection(connection, file_id)
    services.package_file_delete(package_file=package_file)
    messages.success(request, f"Removed {package_file.filename}.")
    return redirect("connection_detail", slug=connection.slug)


@require_POST
def environment_rebuild(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """Build one of the connection's environments again (waits for pip)."""
    connection = connection_for_user(request.user, slug)
    try:
        outcome = services.environment_rebuild(connection=connection, key=key)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        if outcome.ok:
            messages.success(request, f"Rebuilt environment {key[:12]}.")
        else:
            messages.error(request, f"Environment {key[:12]} failed to build: {outcome.error}")
    return redirect("connection_detail", slug=connection.slug)


@require_http_methods(["GET", "POST"])
def connection_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Edit a connection; only its owner and staff see the credentials and sharing fields."""
    connection = connection_for_user(request.user, slug)
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
            credentials=form.credentials_change(),
        )
        messages.success(request, "Saved.")
        return redirect("connection_detail", slug=connection.slug)
    return render(
        request, "connections/connection_form.html", {"form": form, "connection": connection}
    )


@require_http_methods(["GET", "POST"])
def connector_create(request: HttpRequest, slug: str) -> HttpResponse:
    """Create a connector in a connection from one of the starting templates."""
    connection = connection_for_user(request.user, slug)
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
    form = ConnectorCodeForm(
        initial={
            "code": connector.code,
            "interface": connector.interface,
            "parser": connector.parser,
            "packages": connector.packages,
        }
    )
    return render(
        request,
        "connections/editor.html",
        {
            "connector": connector,
            "connection": connector.connection,
            "form": form,
            "latest_version": connector.latest_version,
            "runs": connector.runs.select_related("user", "code_version")[:10],
            # Which Spark a spark connector uses and whether it is up (probed here, not while
            # the template renders).
            "spark": engine_config.spark_status() if connector.interface == "spark" else None,
            "editor_config": {
                "saveUrl": reverse("connector_save", args=[connector.slug]),
                "checkUrl": reverse("connector_check", args=[connector.slug]),
                "listUrl": reverse("runs:preview", args=[connector.slug, "list"]),
            },
        },
    )


@require_POST
def connector_save(request: HttpRequest, slug: str) -> JsonResponse:
    """Save the editor's code; a change makes a new version."""
    connector = connector_for_user(request.user, slug)
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
    connector = connector_for_user(request.user, slug)
    version = version_for_connector(connector, number)
    latest = services.connector_revert(connector=connector, version=version, author=request.user)
    messages.success(request, f"Reverted to version {number} as version {latest.number}.")
    return redirect("connector_editor", slug=connector.slug)


def version_diff(older, newer) -> list[tuple[str, str]]:
    """Return (kind, text) lines of a unified diff of two versions' code and settings."""

    def describe(version) -> list[str]:
        header = [f"# interface: {version.interface} {version.parser}".rstrip()]
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
