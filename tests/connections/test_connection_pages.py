"""Creating, viewing and editing connections in the app (not the admin)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connections.models import Connection

pytestmark = pytest.mark.django_db

SECRET = "tok-SECRET-4242"


def test_it_creates_a_connection_owned_by_the_user(client, owner, team):
    client.force_login(owner)
    response = client.post(
        reverse("connection_create"),
        {"name": "Billing API", "description": "d", "packages": "", "library_code": "X = 1",
         "credentials": '{"key": "NEW-SECRET-777"}', "shared_with": [team.pk]},
    )  # fmt: skip
    connection = Connection.objects.get(name="Billing API")
    assert response.headers["Location"] == reverse("connection_detail", args=[connection.slug])
    assert connection.owner == owner
    assert connection.decrypted_credentials() == '{"key": "NEW-SECRET-777"}'
    assert list(connection.shared_with.all()) == [team]
    page = client.get(response.headers["Location"]).content.decode()
    assert "NEW-SECRET-777" not in page and "set, changed" in page


def test_it_never_shows_credentials_on_any_page(client, owner, connection, connector):
    client.force_login(owner)
    for url in [
        reverse("home"),
        reverse("connection_detail", args=[connection.slug]),
        reverse("connection_edit", args=[connection.slug]),
        reverse("connector_editor", args=[connector.slug]),
        reverse("connector_versions", args=[connector.slug]),
    ]:
        page = client.get(url).content.decode()
        assert SECRET not in page, url
        assert connection.credentials_token not in page, url


def test_it_keeps_credentials_when_left_blank(client, owner, connection):
    client.force_login(owner)
    client.post(
        reverse("connection_edit", args=[connection.slug]),
        {
            "name": "Renamed",
            "description": "",
            "packages": "",
            "library_code": "",
            "credentials": "",
        },
    )
    connection.refresh_from_db()
    assert connection.name == "Renamed"
    assert SECRET in connection.decrypted_credentials()


def test_it_lets_the_owner_change_credentials(client, owner, connection):
    client.force_login(owner)
    client.post(
        reverse("connection_edit", args=[connection.slug]),
        {"name": connection.name, "description": "", "packages": "", "library_code": "",
         "credentials": "changed-by-owner"},
    )  # fmt: skip
    connection.refresh_from_db()
    assert connection.decrypted_credentials() == "changed-by-owner"


def test_it_does_not_let_members_change_credentials_or_sharing(client, member, connection, team):
    client.force_login(member)
    url = reverse("connection_edit", args=[connection.slug])
    page = client.get(url).content.decode()
    assert 'name="credentials"' not in page and 'name="shared_with"' not in page
    client.post(
        url,
        {"name": connection.name, "description": "member was here", "packages": "",
         "library_code": "", "credentials": "hijacked", "shared_with": []},
    )  # fmt: skip
    connection.refresh_from_db()
    assert connection.description == "member was here"
    assert SECRET in connection.decrypted_credentials()
    assert list(connection.shared_with.all()) == [team]


@pytest.mark.parametrize("starter", ["pandas", "spark", "bytes-csv", "folders"])
def test_it_creates_connectors_from_each_starter(client, owner, connection, starter):
    client.force_login(owner)
    response = client.post(
        reverse("connector_create", args=[connection.slug]),
        {"name": f"From {starter}", "starter": starter},
    )
    connector = connection.connectors.get(name=f"From {starter}")
    assert response.headers["Location"] == reverse("connector_editor", args=[connector.slug])
    assert connector.versions.count() == 1
    assert "def list_objects" in connector.code
    assert (connector.interface == "bytes") == (starter == "bytes-csv")
    assert connector.parser == ("csv" if starter == "bytes-csv" else "")
