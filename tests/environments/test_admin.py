"""The admin shows package files and environments read-only, the build log in <pre>."""

from __future__ import annotations

import pytest
from django.urls import reverse

from environments.models import Environment, EnvironmentStatus
from tests.environments.helpers import upload_wheel

pytestmark = pytest.mark.django_db


def test_it_shows_package_files_and_environments_read_only(client, staff, connection):
    package_file = upload_wheel(connection)
    environment = Environment.objects.create(
        key="a" * 64, status=EnvironmentStatus.FAILED, python="cpython-3.11", build_log="<pip>"
    )
    client.force_login(staff)
    for model, obj in (("packagefile", package_file), ("environment", environment)):
        changelist = client.get(reverse(f"admin:environments_{model}_changelist"))
        assert changelist.status_code == 200
        page = client.get(reverse(f"admin:environments_{model}_change", args=[obj.pk]))
        assert page.status_code == 200
        assert client.get(reverse(f"admin:environments_{model}_add")).status_code == 403
    page = client.get(reverse("admin:environments_environment_change", args=[environment.pk]))
    assert "<pre>&lt;pip&gt;</pre>" in page.content.decode()
