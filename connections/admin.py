"""Admin for connections, connectors and their immutable code versions."""

from __future__ import annotations

from django.contrib import admin

from connections import services
from connections.forms import ConnectionAdminForm
from connections.models import CodeVersion, Connection, Connector


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
    readonly_fields = ["credentials_status", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "owner", "shared_with", "viewers"]}),
        ("Network", {"fields": ["network_access"]}),
        ("Credentials", {"fields": ["credentials_status", "credentials", "clear_credentials"]}),
        ("Code shared by its connectors", {"fields": ["packages", "library_code"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [ConnectorInline]

    @admin.display(description="Credentials")
    def credentials_status(self, obj: Connection) -> str:
        return obj.credentials_status

    def save_model(self, request, obj: Connection, form: ConnectionAdminForm, change: bool) -> None:
        new_credentials = form.credentials_change()
        if new_credentials is not None:
            services.connection_set_credentials(connection=obj, credentials=new_credentials)
        super().save_model(request, obj, form, change)


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
