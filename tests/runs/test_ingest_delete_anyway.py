"""The run page's "Delete anyway": an ingest the deletion guard stopped can be started again with
deletes allowed, by people who may use the connection."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from runs.ingest import services
from runs.models import Run, RunStatus
from tests.factories import make_connector
from tests.runs.ingest_helpers import committed, ingest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


@pytest.fixture
def stopped(connection, source) -> Run:
    """An ingest the deletion guard stopped: the source lost both committed partitions."""
    connector = make_connector(connection=connection, name="Emptied", code=source.code)
    source.set("a", "v1")
    source.set("b", "v1")
    ingest(connector)
    source.remove("a")
    source.remove("b")
    run = ingest(connector)
    assert run.error_type == "DeletionGuard"
    return run


@pytest.fixture
def viewer(stranger, connection):
    group = Group.objects.create(name="readers")
    stranger.groups.add(group)
    connection.viewers.add(group)
    return stranger


def test_it_starts_an_ingest_that_may_delete(client, member, stopped):
    client.force_login(member)
    page = client.get(reverse("runs:detail", args=[stopped.pk])).content.decode()
    assert "deletes 2 of 2 committed partitions" in page and "Delete anyway</button>" in page
    response = client.post(reverse("runs:delete_anyway", args=[stopped.pk]))
    run = Run.objects.latest("pk")
    assert response.headers["Location"] == reverse("runs:detail", args=[run.pk])
    assert run.status == RunStatus.QUEUED and run.user == member
    assert run.parameters == {"allow_deletes": True}
    run = services.ingest_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert committed(stopped.connector) == {}


def test_viewers_get_no_button_and_cannot_delete(client, viewer, stopped):
    client.force_login(viewer)
    page = client.get(reverse("runs:detail", args=[stopped.pk])).content.decode()
    assert "deletes 2 of 2 committed partitions" in page and "Delete anyway</button>" not in page
    response = client.post(reverse("runs:delete_anyway", args=[stopped.pk]))
    assert response.status_code == 403
    assert Run.objects.latest("pk") == stopped


def test_only_a_run_the_guard_stopped_can_delete_anyway(client, owner, stopped):
    first = Run.objects.filter(connector=stopped.connector).earliest("pk")
    client.force_login(owner)
    page = client.get(reverse("runs:detail", args=[first.pk])).content.decode()
    assert "Delete anyway</button>" not in page
    response = client.post(reverse("runs:delete_anyway", args=[first.pk]), follow=True)
    assert "Only an ingest the deletion guard stopped" in response.content.decode()
    assert Run.objects.latest("pk") == stopped
