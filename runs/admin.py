"""Read-only admin for runs and partitions: they are records, written only by the engine."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from runs.models import Partition, Run, Schedule


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "connector", "kind", "status", "user", "enqueued_at", "duration_ms"]
    list_filter = ["kind", "status"]
    search_fields = ["connector__name", "error_message"]
    exclude = ["error_traceback", "logs"]
    readonly_fields = [
        f.name for f in Run._meta.fields if f.name not in {"error_traceback", "logs"}
    ] + ["logs_pre", "traceback_pre"]

    @admin.display(description="Logs")
    def logs_pre(self, obj: Run) -> str:
        return format_html("<pre>{}</pre>", obj.logs)

    @admin.display(description="Traceback")
    def traceback_pre(self, obj: Run) -> str:
        return format_html("<pre>{}</pre>", obj.error_traceback)


@admin.register(Partition)
class PartitionAdmin(ReadOnlyAdmin):
    list_display = ["connector", "name", "fingerprint", "row_count", "bytes", "updated_at"]
    search_fields = ["connector__name", "name"]
    readonly_fields = [f.name for f in Partition._meta.fields]


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyAdmin):
    """Read-only: set schedules with `manage.py schedule` or the editor (they validate them)."""

    list_display = ["connector", "describe", "timezone", "enabled", "next_run", "last_run"]
    list_filter = ["enabled"]
    search_fields = ["connector__slug", "connector__name"]
    readonly_fields = [f.name for f in Schedule._meta.fields]
