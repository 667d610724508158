"""Package files uploaded to a connection: validated, stored under DATA_DIR, replaced, deleted."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from environments.models import PackageFile
from tests.environments.helpers import wheel_bytes, wheel_name

pytestmark = pytest.mark.django_db


def upload(client, connection, name, content):
    return client.post(
        f"/connections/{connection.slug}/packages/upload/",
        {"file": SimpleUploadedFile(name, content)},
    )


def test_it_stores_an_uploaded_wheel_by_its_hash(client, member, connection):
    client.force_login(member)
    response = upload(client, connection, wheel_name(), wheel_bytes())
    assert response.status_code == 302
    package_file = PackageFile.objects.get(connection=connection)
    assert package_file.filename == wheel_name() and package_file.uploaded_by == member
    assert package_file.storage_path.read_bytes() == wheel_bytes()
    assert package_file.sha256 in str(package_file.storage_path)
    page = client.get(f"/connections/{connection.slug}/").content.decode()
    assert wheel_name() in page


def test_it_refuses_a_file_that_is_not_a_package(client, owner, connection):
    client.force_login(owner)
    response = upload(client, connection, "notes.txt", b"hello")
    assert response.status_code == 400
    assert "is not a package file name" in response.content.decode()
    response = upload(client, connection, wheel_name(), b"not a zip")
    assert response.status_code == 400
    assert "is not a zip archive" in response.content.decode()
    response = upload(client, connection, "tinypkg-0.1.tar.gz", b"not gzip")
    assert "is not a gzip-compressed tar archive" in response.content.decode()
    assert not PackageFile.objects.exists()


def test_it_refuses_a_file_over_the_size_limit(client, owner, connection, settings):
    settings.ENVIRONMENT_UPLOAD_MAX_MB = 1
    client.force_login(owner)
    response = upload(client, connection, wheel_name(), b"PK" + b"\0" * (1024 * 1024))
    assert response.status_code == 400
    assert "larger than 1 MB" in response.content.decode()


def test_the_same_name_replaces_the_file(client, owner, connection):
    client.force_login(owner)
    upload(client, connection, wheel_name(), wheel_bytes(version="0.1"))
    first = PackageFile.objects.get()
    upload(
        client,
        connection,
        wheel_name(),
        wheel_bytes(name="tinypkg", version="0.1", requires=("x",)),
    )
    second = PackageFile.objects.get()
    assert second.sha256 != first.sha256
    assert not first.storage_path.exists() and second.storage_path.exists()


def test_it_deletes_a_file(client, owner, connection):
    client.force_login(owner)
    upload(client, connection, wheel_name(), wheel_bytes())
    package_file = PackageFile.objects.get()
    response = client.post(f"/connections/{connection.slug}/packages/{package_file.pk}/delete/")
    assert response.status_code == 302
    assert not PackageFile.objects.exists()
    assert not package_file.storage_path.exists()


def test_a_stranger_can_neither_upload_nor_delete(client, stranger, owner, connection):
    client.force_login(stranger)
    assert upload(client, connection, wheel_name(), wheel_bytes()).status_code == 403
    client.force_login(owner)
    upload(client, connection, wheel_name(), wheel_bytes())
    package_file = PackageFile.objects.get()
    client.force_login(stranger)
    url = f"/connections/{connection.slug}/packages/{package_file.pk}/delete/"
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405
    assert PackageFile.objects.exists()
