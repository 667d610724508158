"""The editor's Download and Upload: the export file of manage.py export_connector."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connections import export_format
from tests.factories import TRIVIAL_CODE

pytestmark = pytest.mark.django_db


def download(client, connector) -> str:
    response = client.get(reverse("connector_download", args=[connector.slug]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{connector.slug}.py"'
    return response.content.decode()


def upload(client, connector, text: str):
    file = SimpleUploadedFile("c.py", text.encode(), content_type="text/x-python")
    return client.post(
        reverse("connector_upload", args=[connector.slug]), {"file": file}, follow=True
    )


def test_the_editor_has_both_buttons(client, owner, connector):
    client.force_login(owner)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'id="download-button"' in page and 'id="upload-button"' in page


def test_a_viewer_may_download_but_not_upload(client, member, connector, connection, team):
    connection.shared_with.remove(team)
    connection.viewers.add(team)
    client.force_login(member)
    assert download(client, connector).endswith(TRIVIAL_CODE)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'id="upload-button"' not in page
    response = upload(client, connector, download(client, connector))
    assert response.status_code in (403, 404)


def test_a_stranger_is_refused(client, stranger, connector):
    client.force_login(stranger)
    response = client.get(reverse("connector_download", args=[connector.slug]))
    assert response.status_code == 403


def test_upload_saves_a_new_version_and_download_gives_it_back(client, member, connector):
    client.force_login(member)
    text = download(client, connector).replace("[1, 2, 3]", "[9]")
    text = text.replace("# name: Orders", "# name: Renamed")
    page = upload(client, connector, text).content.decode()
    assert "Uploaded as version 2." in page
    connector.refresh_from_db()
    assert "[9]" in connector.code and connector.name == "Orders"  # name and slug stay
    assert connector.latest_version.author == member
    assert download(client, connector) == text.replace("# name: Renamed", "# name: Orders")


def test_a_malformed_upload_names_the_line_and_changes_nothing(client, owner, connector):
    client.force_login(owner)
    text = f"{export_format.START_MARKER}\n# name: X\n# bad line\n{export_format.END_MARKER}\n"
    page = upload(client, connector, text).content.decode()
    assert "Not uploaded: The file&#x27;s header, line 3" in page
    assert connector.versions.count() == 1
