"""Two share levels: members of a group a connection is shared *to view* with see its
connectors, runs and partitions and run nothing; members of a *use* group run and change it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from runs.ingest import services as ingest_services
from runs.models import Run
from tests.factories import UserFactory, make_connector

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(connection):
    readers = Group.objects.create(name="readers")
    connection.viewers.add(readers)
    user = UserFactory(username="viewer")
    user.groups.add(readers)
    return user


@pytest.fixture
def connector(connection):
    return make_connector(connection=connection, name="Orders")


def test_a_viewer_sees_the_connection_its_connectors_and_runs(client, viewer, owner, connector):
    run = ingest_services.ingest_create(connector=connector, user=owner)
    client.force_login(viewer)
    pages = [
        reverse("connection_detail", args=[connector.connection.slug]),
        reverse("connector_editor", args=[connector.slug]),
        reverse("connector_versions", args=[connector.slug]),
        reverse("runs:connector_runs", args=[connector.slug]),
        reverse("runs:detail", args=[run.pk]),
        reverse("runs:partitions", args=[connector.slug]),
    ]
    for page in pages:
        assert client.get(page).status_code == 200, page
    editor = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'id="view-only"' in editor


def test_a_viewer_runs_and_changes_nothing(client, viewer, owner, connector):
    run = ingest_services.ingest_create(connector=connector, user=owner)
    slug, connection_slug = connector.slug, connector.connection.slug
    client.force_login(viewer)
    attempts = [
        (reverse("runs:preview", args=[slug, "read"]), {"code": connector.code}),
        (reverse("runs:ingest", args=[slug]), {}),
        (reverse("runs:ingest_plan", args=[slug]), {}),
        (reverse("runs:cancel", args=[run.pk]), {}),
        (reverse("connector_save", args=[slug]), {"code": "hijacked = True"}),
        (reverse("connector_create", args=[connection_slug]), {"name": "Mine"}),
        (reverse("connection_edit", args=[connection_slug]), {"name": "Renamed"}),
        (reverse("package_file_upload", args=[connection_slug]), {}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 403, url
    connector.refresh_from_db()
    assert connector.code != "hijacked = True"
    assert not Run.objects.exclude(pk=run.pk).exists()  # no preview, no second ingest
    run.refresh_from_db()
    assert run.status == "queued"


def test_a_member_of_a_use_group_runs_it(client, member, connector):
    client.force_login(member)
    response = client.post(reverse("runs:ingest", args=[connector.slug]))
    assert response.status_code == 302 and Run.objects.filter(kind="ingest").exists()


def test_the_share_form_says_what_use_implies(client, owner, connection):
    client.force_login(owner)
    page = client.get(reverse("connection_edit", args=[connection.slug])).content.decode()
    assert "Shared to use with" in page and "so they can read them" in page
    assert "Shared to view with" in page
