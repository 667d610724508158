"""Admin for connections, connectors and their immutable code versions."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.utils.decorators import method_decorator
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters

from connections import audit, services
from connections.forms import (
    ROW_INPUT_PREFIX,
    ConnectionAdminForm,
    credential_row_inputs,
    credential_rows_help,
)
from connections.models import AuditEvent, CodeVersion, Connection, Connector
from connections.selectors import StoredCredentials, shown_credentials, stored_credentials


class ConnectorInline(admin.TabularInline):
    model = Connector
    fields = ["name", "slug", "interface", "parser", "updated_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionAdminForm
    list_display = ["name", "slug", "owner", "credentials_status", "updated_at"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["shared_with", "viewers"]
    readonly_fields = ["credentials_status", "credential_fields_shown", "created_at", "updated_at"]
    inlines = [ConnectorInline]

    def get_fieldsets(self, request, obj: Connection | None = None) -> list:
        fieldsets = [
            (None, {"fields": ["name", "slug", "description", "owner", "shared_with", "viewers"]}),
            ("Network", {"fields": ["network_access"]}),
            ("Credentials", {"fields": ["credentials_status", "credential_fields_shown"]}),
        ]
        if obj is None or self.has_change_permission(request, obj):
            stored = stored_credentials(obj) if obj else StoredCredentials("none")
            if rows := credential_row_inputs(stored):
                help_text = credential_rows_help(stored)
                fieldsets.append(("Credential fields", {"fields": rows, "description": help_text}))
        replace = ["credentials_version", "credentials", "clear_credentials"]
        return [
            *fieldsets,
            ("Replace or remove all credentials", {"fields": replace}),
            ("Code shared by its connectors", {"fields": ["packages", "library_code"]}),
            ("History", {"fields": ["created_at", "updated_at"]}),
        ]

    def get_form(self, request, obj: Connection | None = None, change: bool = False, **kwargs):
        # The credential field rows are built by the form from the connection: not model fields.
        fields = kwargs.pop("fields", None) or flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [name for name in fields if not name.startswith(ROW_INPUT_PREFIX)]
        return super().get_form(request, obj, change, **kwargs)

    @method_decorator(sensitive_post_parameters())
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Error reports leave out what was posted: it may hold credentials.
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="Credentials")
    def credentials_status(self, obj: Connection) -> str:
        return obj.credentials_status

    @admin.display(description="Fields")
    def credential_fields_shown(self, obj: Connection) -> str:
        shown = shown_credentials(obj)
        if shown.kind == "text":
            return "one secret value (set)"
        if shown.kind == "unreadable":
            return "cannot be decrypted with the configured keys"
        if not shown.fields:
            return "none"
        lines = ((field.name, field.shown_value) for field in shown.fields)
        return format_html_join(mark_safe("<br>"), "<b>{}</b>: {}", lines)

    def save_model(self, request, obj: Connection, form: ConnectionAdminForm, change: bool) -> None:
        # The audit log compares with the stored state once the shares are saved (save_related).
        form.audit_before = audit.saved_connection_state(obj)
        new_credentials = form.credentials_change()
        if new_credentials is not None:
            services.connection_set_credentials(connection=obj, credentials=new_credentials)
        services.connection_update_credential_fields(
            connection=obj, changes=form.credential_field_changes()
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form: ConnectionAdminForm, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        audit.record_connection_changes(
            before=form.audit_before, connection=form.instance, created=not change
        )


class CodeVersionInline(admin.TabularInline):
    model = CodeVersion
    fields = ["number", "fingerprint", "interface", "author", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ["name", "connection", "interface", "parser", "updated_at"]
    list_filter = ["interface"]
    search_fields = ["name", "slug", "connection__name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    inlines = [CodeVersionInline]

    def save_model(self, request, obj: Connector, form, change: bool) -> None:
        # Through the services, so every code change records a version.
        if not change:
            created = services.connector_create(
                connection=obj.connection,
                name=obj.name,
                slug=obj.slug,
                code=obj.code,
                interface=obj.interface,
                parser=obj.parser,
                parser_options=obj.parser_options,
                packages=obj.packages,
                author=request.user,
            )
            obj.pk = created.pk
            return
        super().save_model(request, obj, form, change)
        services.connector_save_code(
            connector=obj,
            code=obj.code,
            packages=obj.packages,
            interface=obj.interface,
            parser=obj.parser,
            parser_options=obj.parser_options,
            author=request.user,
        )


@admin.register(CodeVersion)
class CodeVersionAdmin(admin.ModelAdmin):
    list_display = ["connector", "number", "interface", "fingerprint", "author", "created_at"]
    list_filter = ["interface"]
    search_fields = ["connector__name", "fingerprint"]
    readonly_fields = [f.name for f in CodeVersion._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: written by connections.audit, never by hand."""

    list_display = ["at", "connection_slug", "actor_name", "via", "action", "target", "summary"]
    list_filter = ["action", "via"]
    search_fields = ["connection_slug", "actor_name", "actor__username", "target"]
    date_hierarchy = "at"

    @admin.display(description="Details")
    def summary(self, obj: AuditEvent) -> str:
        return audit.describe(obj)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
