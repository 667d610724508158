"""The admin: credentials write-only, history without values, runs read-only."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from connections.models import Connection
from runs.models import Partition, Run

pytestmark = pytest.mark.django_db

PLAINTEXT = "tok-SECRET-4242"


def connection_form_data(connection: Connection, **changes) -> dict:
    data = {
        "name": connection.name,
        "slug": connection.slug,
        "description": connection.description,
        "owner": connection.owner_id,
        "packages": connection.packages,
        "library_code": connection.library_code,
        "credentials": "",
        "connectors-TOTAL_FORMS": "0",
        "connectors-INITIAL_FORMS": "0",
        "connectors-MIN_NUM_FORMS": "0",
        "connectors-MAX_NUM_FORMS": "1000",
    }
    return data | changes


def test_it_never_renders_credentials_in_admin_pages(client, staff, connection, connector):
    Run.objects.create(connector=connector, kind="context", status="succeeded")
    Partition.objects.create(connector=connector, name="p", fingerprint="f", storage_path="x")
    client.force_login(staff)
    pages = [
        reverse("admin:index"),
        reverse("admin:connections_connection_changelist"),
        reverse("admin:connections_connection_change", args=[connection.pk]),
        reverse("admin:connections_connection_history", args=[connection.pk]),
        reverse("admin:connections_connector_change", args=[connector.pk]),
        reverse("admin:runs_run_changelist"),
        reverse("admin:runs_partition_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert PLAINTEXT not in response.content.decode(), url
        assert connection.credentials_token not in response.content.decode(), url


def test_it_shows_that_credentials_are_set(client, staff, connection):
    client.force_login(staff)
    response = client.get(reverse("admin:connections_connection_change", args=[connection.pk]))
    assert "set, changed" in response.content.decode()


def test_it_keeps_credentials_when_the_field_is_blank(client, staff, connection):
    client.force_login(staff)
    url = reverse("admin:connections_connection_change", args=[connection.pk])
    response = client.post(url, connection_form_data(connection, description="new text"))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.description == "new text"
    assert connection.decrypted_credentials() == '{"token": "tok-SECRET-4242"}'


def test_it_changes_credentials_and_logs_it_without_the_value(client, staff, connection):
    client.force_login(staff)
    url = reverse("admin:connections_connection_change", args=[connection.pk])
    response = client.post(url, connection_form_data(connection, credentials="NEW-SECRET-99"))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.decrypted_credentials() == "NEW-SECRET-99"
    entry = LogEntry.objects.get(object_id=str(connection.pk))
    assert "Replace all credentials" in entry.get_change_message()
    assert "NEW-SECRET-99" not in entry.change_message
    history = client.get(reverse("admin:connections_connection_history", args=[connection.pk]))
    assert "NEW-SECRET-99" not in history.content.decode()


def test_it_removes_credentials(client, staff, connection):
    client.force_login(staff)
    url = reverse("admin:connections_connection_change", args=[connection.pk])
    client.post(url, connection_form_data(connection, clear_credentials="on"))
    connection.refresh_from_db()
    assert not connection.has_credentials


def test_it_versions_code_edited_in_the_admin(client, staff, connector):
    client.force_login(staff)
    url = reverse("admin:connections_connector_change", args=[connector.pk])
    data = {
        "connection": connector.connection_id,
        "name": connector.name,
        "slug": connector.slug,
        "interface": "pandas",
        "parser": "",
        "code": connector.code + "\n# edited\n",
        "packages": "",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(connector.versions.values_list("number", flat=True)) == [2, 1]


def test_it_keeps_runs_read_only(client, staff, connector):
    run = Run.objects.create(connector=connector, kind="read", status="failed", logs="hello")
    client.force_login(staff)
    assert client.get(reverse("admin:runs_run_add")).status_code == 403
    page = client.get(reverse("admin:runs_run_change", args=[run.pk]))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    client.post(reverse("admin:runs_run_change", args=[run.pk]), {"status": "succeeded"})
    run.refresh_from_db()
    assert run.status == "failed"
