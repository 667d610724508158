"""The audit log: each kind of change, from pages, the admin, the API and the command line, with
who, when and how; credential field names, never values; the page and the admin."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from connections import audit, services
from connections.models import AuditEvent, Connection
from tests.api.conftest import bearer_client
from tests.connections.test_credential_fields import admin_data, edit_data
from tests.environments.helpers import wheel_bytes, wheel_name
from tests.factories import TRIVIAL_CODE, make_connection, make_connector

pytestmark = pytest.mark.django_db

SECRET = "zz-AUDIT-SECRET-8080"  # typed into every path; must never reach the audit table
PLAIN = "plain-AUDIT-VALUE-7070"  # a value that is not secret: not stored either


def events(connection: Connection, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(connection=connection, **filters).order_by("pk"))


def actions(connection: Connection) -> list[str]:
    return [event.action for event in events(connection)]


def only(connection: Connection, action: str) -> AuditEvent:
    [event] = events(connection, action=action)
    return event


def audit_table_text() -> str:
    """Every audit row, all columns, as text."""
    return json.dumps(list(AuditEvent.objects.values()), default=str)


@pytest.fixture
def source(owner, team) -> Connection:
    credentials = json.dumps({"host": "db.example.com", "password": "pw-old-1", "user": "svc"})
    connection = make_connection(owner=owner, name="Postgres", credentials=credentials)
    connection.shared_with.add(team)
    AuditEvent.objects.all().delete()  # the creation is tested on its own
    return connection


# Pages


def test_creating_a_connection_on_its_page_records_what_it_holds(client, owner, team):
    client.force_login(owner)
    response = client.post(reverse("connection_create"), {
        "name": "New source", "description": "", "packages": "requests==2.32.3",
        "library_code": "VALUE = 1\n", "network_access": "on", "shared_with": [team.pk],
        "credentials": "", "credentials_version": "",
        "field-0-name": "password", "field-0-value": SECRET,
        "field-1-name": "host", "field-1-value": PLAIN,
    })  # fmt: skip
    assert response.status_code == 302
    connection = Connection.objects.get(name="New source")
    assert actions(connection) == [
        "connection_created",
        "credentials_changed",
        "library_changed",
        "packages_changed",
        "share_added",
    ]
    assert only(connection, "credentials_changed").details == {"added": ["password", "host"]}
    assert only(connection, "packages_changed").details == {"added": ["requests==2.32.3"]}
    share = only(connection, "share_added")
    assert (share.target, share.details) == ("team", {"level": "use"})
    for event in events(connection):
        assert (event.actor, event.actor_name, event.via) == (owner, "owner", "page")
    assert SECRET not in audit_table_text() and PLAIN not in audit_table_text()


def test_editing_credentials_records_field_names_only(client, owner, source):
    client.force_login(owner)
    response = client.post(reverse("connection_edit", args=[source.slug]), edit_data(source, **{
        "field-1-value": SECRET,  # password
        "field-2-remove": "on", "field-2-secret": "on",  # user
        "field-0-secret": "on",  # host becomes secret
        "field-3-name": "api_key", "field-3-value": SECRET,
    }))  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    assert actions(source) == ["credentials_changed"]
    assert only(source, "credentials_changed").details == {
        "added": ["api_key"],
        "changed": ["password"],
        "removed": ["user"],
        "made_secret": ["host"],
    }
    assert SECRET not in audit_table_text() and "pw-old-1" not in audit_table_text()


def test_saving_the_form_unchanged_records_nothing(client, owner, source):
    client.force_login(owner)
    client.post(reverse("connection_edit", args=[source.slug]), edit_data(source))
    assert actions(source) == []


def test_it_records_library_packages_and_sharing_changes(client, owner, source, team):
    viewers = Group.objects.create(name="auditors")
    client.force_login(owner)
    response = client.post(reverse("connection_edit", args=[source.slug]), edit_data(source, **{
        "library_code": "A = 1\nB = 2\n",
        "packages": "pandas\nrequests>=2",
        "shared_with": [], "viewers": [viewers.pk, team.pk],
    }))  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert only(source, "library_changed").details == {"lines_before": 0, "lines_after": 2}
    packages = only(source, "packages_changed").details
    assert packages == {"added": ["pandas", "requests>=2"]}
    assert (only(source, "share_changed").target, only(source, "share_changed").details) == (
        "team",
        {"from": "use", "to": "view"},
    )
    assert only(source, "share_added").target == "auditors"

    client.post(reverse("connection_edit", args=[source.slug]), edit_data(source, viewers=[]))
    removed = events(source, action="share_removed")
    assert sorted(event.target for event in removed) == ["auditors", "team"]


def test_package_changes_leave_out_a_password_in_a_url():
    before = "pandas\nrequests>=2\n"
    after = "requests>=2\n\nprivate @ https://user:hunter2@pkgs.example.com/p.whl\n"
    assert audit.package_changes(before, after) == {
        "added": ["private @ https://***@pkgs.example.com/p.whl"],
        "removed": ["pandas"],
    }


def test_it_records_code_saves_reverts_and_new_connectors(client, member, connection):
    client.force_login(member)
    client.post(reverse("connector_create", args=[connection.slug]), {
        "name": "Orders", "starter": "pandas",
    })  # fmt: skip
    connector = connection.connectors.get()
    form = {"code": TRIVIAL_CODE + "\n# v2\n", "interface": "pandas", "parser": "", "packages": ""}
    client.post(reverse("connector_save", args=[connector.slug]), form)
    client.post(reverse("connector_save", args=[connector.slug]), form)  # no change: no event
    client.post(reverse("connector_revert", args=[connector.slug, 1]))
    recorded = [
        (e.action, e.target, e.details, e.via, e.actor) for e in events(connection, via="page")
    ]
    assert recorded == [
        ("connector_created", "orders", {"version": 1}, "page", member),
        ("code_saved", "orders", {"version": 2}, "page", member),
        ("code_reverted", "orders", {"version": 3, "from_version": 1}, "page", member),
    ]


def test_it_records_package_file_uploads_and_deletes(client, member, connection):
    client.force_login(member)
    url = reverse("package_file_upload", args=[connection.slug])
    client.post(url, {"file": SimpleUploadedFile(wheel_name(), wheel_bytes())})
    client.post(url, {"file": SimpleUploadedFile(wheel_name(), wheel_bytes("tinypkg", "0.2"))})
    package_file = connection.package_files.get()
    client.post(reverse("package_file_delete", args=[connection.slug, package_file.pk]))
    uploads = events(connection, action="file_uploaded")
    assert [(e.target, e.details["replaced"]) for e in uploads] == [
        (wheel_name(), False),
        (wheel_name(), True),
    ]
    deleted = only(connection, "file_deleted")
    assert (deleted.target, deleted.actor, deleted.via) == (wheel_name(), member, "page")


def test_it_records_schedules_set_in_the_editor(client, member, connector):
    client.force_login(member)
    url = reverse("runs:schedule", args=[connector.slug])
    client.post(url, {"schedule": "15m", "schedule_timezone": "UTC"})
    client.post(url, {"schedule": "0 6 * * 1-5", "schedule_timezone": "Asia/Tokyo"})
    client.post(url, {"schedule_action": "off"})
    client.post(url, {"schedule_action": "off"})  # already off: nothing changes
    connection = connector.connection
    recorded = [(e.action, e.target, e.details) for e in events(connection, via="page")]
    assert recorded == [
        ("schedule_set", connector.slug, {"schedule": "every 15m", "timezone": "UTC"}),
        (
            "schedule_set",
            connector.slug,
            {"schedule": "cron 0 6 * * 1-5", "timezone": "Asia/Tokyo"},
        ),
        ("schedule_off", connector.slug, {}),
    ]


# The admin


def test_the_admin_records_credentials_shares_and_code(client, staff, source, team):
    client.force_login(staff)
    url = reverse("admin:connections_connection_change", args=[source.pk])
    response = client.post(url, admin_data(source, **{
        "field-1-value": SECRET, "field-3-name": "token", "field-3-value": SECRET,
        "shared_with": [], "packages": "pyarrow",
    }))  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert actions(source) == ["credentials_changed", "packages_changed", "share_removed"]
    assert only(source, "credentials_changed").details == {
        "added": ["token"],
        "changed": ["password"],
    }
    assert {(e.actor, e.via) for e in events(source)} == {(staff, "admin")}

    client.post(url, admin_data(source, credentials=SECRET))  # replaced whole: one value
    assert events(source, action="credentials_changed")[-1].details == {
        "added": ["(one value)"],
        "removed": ["host", "password", "user", "token"],
    }
    assert SECRET not in audit_table_text()


def test_the_admin_records_a_new_connection_and_connector_code(client, staff, owner):
    client.force_login(staff)
    response = client.post(reverse("admin:connections_connection_add"), {
        "name": "Made in admin", "slug": "made-in-admin", "description": "", "owner": owner.pk,
        "network_access": "on", "packages": "", "library_code": "", "credentials": SECRET,
        "credentials_version": "", "connectors-TOTAL_FORMS": "0", "connectors-INITIAL_FORMS": "0",
        "connectors-MIN_NUM_FORMS": "0", "connectors-MAX_NUM_FORMS": "1000",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    connection = Connection.objects.get(slug="made-in-admin")
    assert actions(connection) == ["connection_created", "credentials_changed"]
    assert only(connection, "credentials_changed").details == {"added": ["(one value)"]}

    connector = make_connector(connection=connection, name="Admin code")
    data = {
        "connection": connection.pk, "name": connector.name, "slug": connector.slug,
        "interface": "pandas", "parser": "", "code": connector.code + "\n# edited\n",
        "packages": "", "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    client.post(reverse("admin:connections_connector_change", args=[connector.pk]), data)
    saved = only(connection, "code_saved")
    assert (saved.details, saved.actor, saved.via) == ({"version": 2}, staff, "admin")
    assert SECRET not in audit_table_text()


def test_the_admin_shows_the_log_read_only(client, staff, source):
    with audit.acting(via="cli", name="manage.py test"):
        services.connection_update(
            connection=source, name=source.name, description="", packages="", library_code="x"
        )
    client.force_login(staff)
    page = client.get(
        reverse("admin:connections_auditevent_changelist") + "?action=library_changed"
    )
    assert page.status_code == 200
    assert "manage.py test" in page.content.decode() and "0 → 1 lines" in page.content.decode()
    event = AuditEvent.objects.get()
    assert client.get(reverse("admin:connections_auditevent_add")).status_code == 403
    delete = reverse("admin:connections_auditevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.count() == 1


# The API and the command line


def test_the_api_records_credentials_and_code_with_the_tokens_user(owner, source):
    api = bearer_client(owner)
    response = api.patch(
        f"/api/v1/connections/{source.slug}",
        {"credential_fields": [{"name": "password", "value": SECRET}], "library_code": "Z = 1"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    response = api.post(
        "/api/v1/connectors",
        {"connection": source.slug, "name": "Via API", "code": TRIVIAL_CODE},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    recorded = [(e.action, e.details, e.via, e.actor) for e in events(source)]
    assert recorded == [
        ("credentials_changed", {"changed": ["password"]}, "api", owner),
        ("library_changed", {"lines_before": 0, "lines_after": 1}, "api", owner),
        ("connector_created", {"version": 1}, "api", owner),
    ]
    assert SECRET not in audit_table_text()


def test_the_api_records_sharing_and_schedules(owner, member, source, team):
    Group.objects.create(name="auditors")
    connector = make_connector(connection=source, name="Orders")
    schedule_url = f"/api/v1/connectors/{connector.slug}/schedule"
    member_api = bearer_client(member)
    body = {"cron": "0 6 * * *", "timezone": "Europe/Paris"}
    assert member_api.put(schedule_url, body, content_type="application/json").status_code == 200
    assert member_api.delete(schedule_url).status_code == 200
    response = bearer_client(owner).put(
        f"/api/v1/connections/{source.slug}/sharing",
        {"use": [], "view": ["team", "auditors"]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    recorded = [(e.action, e.target, e.details, e.actor) for e in events(source, via="api")]
    assert recorded == [
        ("schedule_set", "orders", {"schedule": "cron 0 6 * * *", "timezone": "Europe/Paris"},
         member),
        ("schedule_off", "orders", {}, member),
        ("share_added", "auditors", {"level": "view"}, owner),
        ("share_changed", "team", {"from": "use", "to": "view"}, owner),
    ]  # fmt: skip


def test_the_command_line_records_schedules_and_imports(connector, tmp_path):
    call_command("schedule", connector.slug, "--every", "15m")
    call_command("schedule", connector.slug, "--off")
    path = tmp_path / "orders.py"
    call_command("export_connector", connector.slug, "--out", str(path))
    path.write_text(path.read_text() + "\n# imported\n")
    call_command("import_connector", str(path), "--connection", connector.connection.slug)
    call_command("import_connector", str(path), "--connection", connector.connection.slug)
    recorded = [
        (e.action, e.target, e.details, e.via, e.actor_name, e.actor)
        for e in events(connector.connection, via="cli")
    ]
    assert recorded == [
        ("schedule_set", connector.slug, {"schedule": "every 15m", "timezone": "UTC"},
         "cli", "manage.py schedule", None),
        ("schedule_off", connector.slug, {}, "cli", "manage.py schedule", None),
        ("connector_imported", connector.slug, {"version": 2, "created": False},
         "cli", "manage.py import_connector", None),
    ]  # fmt: skip


# The page


def test_the_page_lists_changes_newest_first_in_words(client, member, source):
    with audit.acting(via="api", user=source.owner):
        services.connection_update(
            connection=source,
            name=source.name,
            description="",
            packages="",
            library_code="",
            credential_changes=[services.CredentialFieldChange(name="password", text=SECRET)],
        )
        make_connector(connection=source, name="Orders")
    client.force_login(member)
    page = client.get(reverse("connection_audit", args=[source.slug])).content.decode()
    assert page.index("connector created") < page.index("credentials changed")
    assert "fields changed: password" in page and "version 1" in page
    assert "<td>owner</td>" in page and "<td>API</td>" in page
    assert SECRET not in page
    detail = client.get(reverse("connection_detail", args=[source.slug])).content.decode()
    assert reverse("connection_audit", args=[source.slug]) in detail


def test_the_page_is_there_for_viewers_and_not_for_strangers(client, owner, stranger, source):
    viewer_group = Group.objects.create(name="viewers")
    stranger.groups.add(viewer_group)
    client.force_login(stranger)
    url = reverse("connection_audit", args=[source.slug])
    assert client.get(url).status_code == 404
    source.viewers.add(viewer_group)
    assert client.get(url).status_code == 200


def test_the_page_shows_a_hundred_events_a_page(client, owner, source):
    for number in range(101):
        audit.record(connection=source, action="library_changed", details={"n": number})
    client.force_login(owner)
    url = reverse("connection_audit", args=[source.slug])
    first = client.get(url).content.decode()
    assert first.count("library code changed") == 100 and "Page 1 of 2" in first
    assert client.get(url + "?page=2").content.decode().count("library code changed") == 1


def test_the_log_outlives_a_deleted_connection(owner, source):
    audit.record(connection=source, action="library_changed")
    source.delete()
    event = AuditEvent.objects.get()
    assert event.connection is None and event.connection_slug == "postgres"


def test_it_says_system_when_no_one_is_named(owner):
    connection = make_connection(owner=owner, name="Quiet", credentials=SECRET)
    event = only(connection, "credentials_changed")
    assert (event.actor, event.actor_name, event.via) == (None, "system", "system")
    assert SECRET not in audit_table_text()


def test_it_records_network_access_switched_off_and_on(owner, source):
    api = bearer_client(owner)
    url = f"/api/v1/connections/{source.slug}"
    for value in (False, True):
        response = api.patch(url, {"network_access": value}, content_type="application/json")
        assert response.status_code == 200, response.content
    recorded = [(e.action, e.details) for e in events(source)]
    assert recorded == [
        ("network_changed", {"network_access": False}),
        ("network_changed", {"network_access": True}),
    ]
    assert audit.describe(events(source)[0]) == "off: code and builds run offline"
