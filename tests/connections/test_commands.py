"""Management commands that set up a fresh instance."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from connections.models import Connection, Connector

pytestmark = pytest.mark.django_db


def test_it_creates_an_admin_with_a_generated_password_once(capsys, monkeypatch):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    call_command("ensure_admin")
    first = capsys.readouterr().out
    assert "password" in first
    password = first.split("password ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    call_command("ensure_admin")
    assert capsys.readouterr().out == ""


def test_it_creates_an_admin_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADMIN_USERNAME", "root-user")
    monkeypatch.setenv("ADMIN_PASSWORD", "from-env-pw-77")
    call_command("ensure_admin")
    assert get_user_model().objects.get(username="root-user").check_password("from-env-pw-77")


def test_it_loads_examples_idempotently(staff):
    call_command("load_examples")
    call_command("load_examples")
    connection = Connection.objects.get(slug="examples")
    slugs = set(connection.connectors.values_list("slug", flat=True))
    assert slugs == {"languages-pandas", "languages-spark", "sales-csv-folders"}
    assert Connector.objects.get(slug="sales-csv-folders").parser == "csv"
    assert all(c.versions.count() == 1 for c in connection.connectors.all())
    assert "root" in connection.decrypted_credentials()


def test_it_does_not_overwrite_edited_examples(staff):
    call_command("load_examples")
    Connector.objects.filter(slug="languages-pandas").update(code="# mine")
    call_command("load_examples")
    assert Connector.objects.get(slug="languages-pandas").code == "# mine"
