"""Admin for uploaded package files and package environments, both read-only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from environments.models import Environment, PackageFile


@admin.register(PackageFile)
class PackageFileAdmin(admin.ModelAdmin):
    """Uploaded package files; uploads go through the connection page (services)."""

    list_display = ["filename", "connection", "size_bytes", "uploaded_by", "created_at"]
    search_fields = ["filename", "sha256", "connection__name"]
    readonly_fields = [f.name for f in PackageFile._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    """Package environments, read-only: built by runs, pruned by prune_environments."""

    list_display = ["short_key", "status", "size_bytes", "built_at", "last_used_at"]
    list_filter = ["status"]
    search_fields = ["key"]
    fields = [
        "key", "status", "python", "requirements", "files", "packages", "error", "log",
        "size_bytes", "build_seconds", "build_started_at", "built_at", "last_used_at",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Build log")
    def log(self, obj: Environment) -> str:
        return format_html("<pre>{}</pre>", obj.build_log)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
