"""Editing credential fields in a real browser: one secret replaced, the rest kept as they were."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from connections.models import Connection
from tests.browser.conftest import log_in
from tests.factories import UserFactory, make_connection

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-SECRET-1111"
FIELDS = {"host": "db.example.com", "port": 5432, "password": PASSWORD, "user": "svc_reader"}


def test_it_replaces_one_secret_and_adds_a_field_in_the_browser(page):
    owner = UserFactory(username="owner")
    connection = make_connection(owner=owner, name="Postgres", credentials=json.dumps(FIELDS))
    log_in(page, "owner")

    page.goto(f"/connections/{connection.slug}/edit/")
    rows = page.locator("table.credential-fields tbody tr")
    expect(rows).to_have_count(6)  # four fields, two new rows
    expect(page.locator("[name=field-0-value]")).to_have_value("db.example.com")
    expect(page.locator("[name=field-2-value]")).to_have_value("")
    page.fill("[name=field-2-value]", "pw-NEW-5555\nsecond line")
    page.check("[name=field-3-secret]")
    page.fill("[name=field-4-name]", "region")
    page.fill("[name=field-4-value]", "eu-west-1")
    page.click("button:has-text('Save')")

    expect(page.locator("h1")).to_have_text("Postgres")
    credentials = page.locator("table.credential-fields")
    expect(credentials).to_contain_text("db.example.com")
    expect(credentials).to_contain_text("eu-west-1")
    expect(credentials).not_to_contain_text("svc_reader")
    connection = Connection.objects.get(pk=connection.pk)
    assert json.loads(connection.decrypted_credentials()) == FIELDS | {
        "password": "pw-NEW-5555\nsecond line",
        "region": "eu-west-1",
    }
    assert connection.secret_field_names() == ["password", "user"]
    assert "pw-NEW-5555" not in page.content() and PASSWORD not in page.content()
    assert not page.errors
