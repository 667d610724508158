"""Every connection/connector/run view: login required, 403 without access, 405 wrong method."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import Partition, Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(connection, connector):
    """Each view's URL with the methods it accepts; `None` means no connection to check."""
    run = Run.objects.create(connector=connector, kind="context", status="succeeded")
    partition = Partition.objects.create(
        connector=connector, name="p", fingerprint="f", storage_path="/nonexistent.parquet"
    )
    slug, cslug = connection.slug, connector.slug
    return [
        (reverse("connection_detail", args=[slug]), {"GET"}),
        (reverse("connection_edit", args=[slug]), {"GET", "POST"}),
        (reverse("connector_create", args=[slug]), {"GET", "POST"}),
        (reverse("connector_editor", args=[cslug]), {"GET"}),
        (reverse("connector_save", args=[cslug]), {"POST"}),
        (reverse("connector_check", args=[cslug]), {"POST"}),
        (reverse("connector_versions", args=[cslug]), {"GET"}),
        (reverse("connector_revert", args=[cslug, 1]), {"POST"}),
        (reverse("runs:connector_runs", args=[cslug]), {"GET"}),
        (reverse("runs:preview", args=[cslug, "context"]), {"POST"}),
        (reverse("runs:detail", args=[run.pk]), {"GET"}),
        (reverse("runs:progress", args=[run.pk]), {"GET"}),
        (reverse("runs:cancel", args=[run.pk]), {"POST"}),
        (reverse("runs:delete_anyway", args=[run.pk]), {"POST"}),
        (reverse("runs:ingest", args=[cslug]), {"POST"}),
        (reverse("runs:ingest_plan", args=[cslug]), {"POST"}),
        (reverse("runs:partitions", args=[cslug]), {"GET"}),
        (reverse("runs:partition_rows", args=[cslug, partition.pk]), {"GET"}),
    ]


def test_it_sends_anonymous_users_to_login(client, urls):
    for url, methods in urls:
        for method in methods:
            response = getattr(client, method.lower())(url)
            assert response.status_code == 302, (method, url)
            assert response.headers["Location"].startswith(reverse("login")), url


def test_it_forbids_users_without_access(client, stranger, urls):
    client.force_login(stranger)
    for url, methods in urls:
        for method in methods:
            response = getattr(client, method.lower())(url)
            assert response.status_code == 403, (method, url, response.status_code)


def test_it_refuses_wrong_methods(client, owner, urls):
    client.force_login(owner)
    for url, methods in urls:
        for method in {"GET", "POST", "PUT", "DELETE"} - methods:
            response = getattr(client, method.lower())(url)
            assert response.status_code == 405, (method, url)


def test_it_lets_group_members_in(client, member, urls):
    client.force_login(member)
    for url, methods in urls:
        if "GET" in methods:
            assert client.get(url).status_code == 200, url


def test_it_answers_404_for_unknown_things(client, owner):
    client.force_login(owner)
    assert client.get(reverse("connection_detail", args=["nope"])).status_code == 404
    assert client.get(reverse("connector_editor", args=["nope"])).status_code == 404
    assert client.get(reverse("runs:detail", args=[999999])).status_code == 404
