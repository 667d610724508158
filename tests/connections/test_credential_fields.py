"""Credentials as fields: fields that are not secret are shown, secret ones are write-only and
replaced one by one, on the connection's pages and in the admin."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.test import override_settings
from django.urls import reverse

from connections import services
from connections.models import Connection
from tests.factories import UserFactory, make_connection

pytestmark = pytest.mark.django_db

PASSWORD = "pw-SECRET-1111"
API_KEY = "key-SECRET-2222"
FIELDS = {
    "host": "db.example.com",
    "port": 5432,
    "password": PASSWORD,
    "user": "svc_reader",
    "api_key": API_KEY,
    "options": {"sslmode": "require"},
}
CREDENTIALS = json.dumps(FIELDS)


@pytest.fixture
def source(owner, team) -> Connection:
    connection = make_connection(owner=owner, name="Postgres", credentials=CREDENTIALS)
    connection.shared_with.add(team)
    return connection


def edit_data(connection: Connection, **changes) -> dict:
    """What the owner's browser sends for the edit form as it shows it, with `changes` (None
    leaves an input out, as an unticked box is left out)."""
    connection.refresh_from_db()
    data = {
        "name": connection.name,
        "description": connection.description,
        "packages": connection.packages,
        "library_code": connection.library_code,
        "network_access": "on",
        "shared_with": [group.pk for group in connection.shared_with.all()],
        "credentials": "",
        "credentials_version": connection.credentials_changed_at.isoformat()
        if connection.credentials_changed_at
        else "",
    }
    fields = connection.credential_fields()
    for number, field in enumerate(fields):
        data[f"field-{number}-value"] = "" if field.secret else field.text
        data[f"field-{number}-secret"] = "on" if field.secret else None
    for number in range(len(fields), len(fields) + 2):
        data |= {f"field-{number}-{part}": "" for part in ("name", "value", "secret")}
    data |= changes
    return {name: value for name, value in data.items() if value is not None}


def save(client, connection: Connection, **changes):
    url = reverse("connection_edit", args=[connection.slug])
    return client.post(url, edit_data(connection, **changes))


def stored(connection: Connection) -> dict:
    connection.refresh_from_db()
    return json.loads(connection.decrypted_credentials())


def test_it_takes_each_fields_default_by_its_name(source):
    assert source.secret_field_names() is None
    secret = {field.name: field.secret for field in source.credential_fields()}
    assert secret == {"host": False, "port": False, "password": True, "user": False,
                      "api_key": True, "options": False}  # fmt: skip
    assert source.decrypted_credentials() == CREDENTIALS


@pytest.mark.parametrize("who", ["owner", "member", "viewer", "staff"])
def test_it_shows_fields_that_are_not_secret_to_everyone_who_sees_the_page(
    client, request, source, who
):
    viewers = Group.objects.create(name="auditors")
    source.viewers.add(viewers)
    UserFactory(username="viewer").groups.add(viewers)
    users = {"viewer": lambda: UserFactory._meta.model.objects.get(username="viewer")}
    user = users[who]() if who in users else request.getfixturevalue(who)
    client.force_login(user)
    page = client.get(reverse("connection_detail", args=[source.slug])).content.decode()
    for shown in ("host", "db.example.com", "5432", "svc_reader", "sslmode", "password", "api_key"):
        assert shown in page
    assert page.count("set (secret)") == 2
    assert PASSWORD not in page and API_KEY not in page


def test_it_shows_plain_credentials_as_one_secret_value(client, owner):
    connection = make_connection(owner=owner, credentials="plain-SECRET-3333")
    client.force_login(owner)
    page = client.get(reverse("connection_detail", args=[connection.slug])).content.decode()
    assert "One secret value (set)" in page and "plain-SECRET-3333" not in page
    form = client.get(reverse("connection_edit", args=[connection.slug])).content.decode()
    assert "Adding fields replaces it" in form and "plain-SECRET-3333" not in form


def test_the_edit_form_shows_values_of_fields_that_are_not_secret_only(client, owner, source):
    client.force_login(owner)
    page = client.get(reverse("connection_edit", args=[source.slug])).content.decode()
    assert "db.example.com" in page and "svc_reader" in page
    assert 'name="field-2-value"' in page and "leave blank to keep" in page
    assert 'name="field-6-name"' in page and 'name="field-7-name"' in page  # two new rows
    assert PASSWORD not in page and API_KEY not in page


def test_it_keeps_the_credentials_as_they_are_when_nothing_changes(client, owner, source):
    client.force_login(owner)
    changed_at = source.credentials_changed_at
    response = save(client, source, description="only this")
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.description == "only this"
    assert source.decrypted_credentials() == CREDENTIALS  # the same text, byte for byte
    assert source.credentials_changed_at == changed_at


def test_it_replaces_one_secret_field_and_keeps_the_others_and_their_types(client, owner, source):
    client.force_login(owner)
    response = save(client, source, **{"field-2-value": "pw-NEW-5555"})
    assert response.status_code == 302
    assert stored(source) == FIELDS | {"password": "pw-NEW-5555"}
    assert list(stored(source)) == list(FIELDS)  # the order too
    assert source.secret_field_names() is None


def test_it_keeps_line_breaks_of_a_long_secret_value(client, owner, source):
    key_file = json.dumps({"type": "service_account", "private_key": "-----BEGIN-----\n"}, indent=2)
    client.force_login(owner)
    save(client, source, **{"field-4-value": key_file.replace("\n", "\r\n")})
    assert stored(source)["api_key"] == key_file


def test_it_changes_a_value_that_is_not_secret_keeping_its_json_type(client, owner, source):
    client.force_login(owner)
    save(client, source, **{"field-0-value": "db2.example.com", "field-1-value": "6543",
                            "field-5-value": '{"sslmode": "disable"}'})  # fmt: skip
    assert stored(source) == FIELDS | {"host": "db2.example.com", "port": 6543,
                                       "options": {"sslmode": "disable"}}  # fmt: skip


def test_it_refuses_text_for_a_field_that_holds_json(client, owner, source):
    client.force_login(owner)
    response = save(client, source, **{"field-1-value": "not a number"})
    assert response.status_code == 200
    assert "This field holds JSON" in response.content.decode()
    assert stored(source) == FIELDS


def test_it_lets_the_owner_choose_which_fields_are_secret(client, owner, source):
    client.force_login(owner)
    # The user name becomes secret, the API key does not.
    save(client, source, **{"field-3-secret": "on", "field-4-secret": None})
    source.refresh_from_db()
    assert source.secret_field_names() == ["password", "user"]
    assert stored(source) == FIELDS
    page = client.get(reverse("connection_detail", args=[source.slug])).content.decode()
    assert "svc_reader" not in page and API_KEY in page
    form = client.get(reverse("connection_edit", args=[source.slug])).content.decode()
    assert "svc_reader" not in form

    # Back to the defaults: nothing to remember.
    save(client, source, **{"field-3-secret": None, "field-4-secret": "on"})
    source.refresh_from_db()
    assert source.secret_field_names() is None


def test_it_removes_a_field(client, owner, source):
    client.force_login(owner)
    save(client, source, **{"field-3-remove": "on", "field-3-secret": "on"})
    assert stored(source) == {name: value for name, value in FIELDS.items() if name != "user"}


def test_it_adds_fields_secret_by_their_name_or_by_choice(client, owner, source):
    client.force_login(owner)
    save(client, source, **{"field-6-name": "client_secret", "field-6-value": "cs-SECRET-6666",
                            "field-7-name": "region", "field-7-value": "eu-west-1"})  # fmt: skip
    assert stored(source) == FIELDS | {"client_secret": "cs-SECRET-6666", "region": "eu-west-1"}
    assert source.secret_field_names() is None
    secret = {field.name: field.secret for field in source.credential_fields()}
    assert secret["client_secret"] and not secret["region"]

    save(client, source, **{"field-8-name": "account", "field-8-value": "acct-SECRET-7777",
                            "field-8-secret": "yes"})  # fmt: skip
    assert stored(source)["account"] == "acct-SECRET-7777"
    assert source.secret_field_names() == ["password", "api_key", "client_secret", "account"]
    page = client.get(reverse("connection_detail", args=[source.slug])).content.decode()
    assert "eu-west-1" in page
    assert not any(secret in page for secret in ("cs-SECRET-6666", "acct-SECRET-7777", PASSWORD))


def test_it_refuses_a_new_field_named_like_another(client, owner, source):
    client.force_login(owner)
    response = save(client, source, **{"field-6-name": "host", "field-6-value": "x"})
    assert "There is already a field called host" in response.content.decode()
    response = save(client, source, **{"field-6-value": "nameless"})
    assert "Name this field" in response.content.decode()
    assert stored(source) == FIELDS


def test_it_never_sends_back_a_secret_typed_into_a_form_with_errors(client, owner, source):
    client.force_login(owner)
    typed = {"field-2-value": "pw-TYPED-8888", "field-6-name": "token"}
    typed["field-6-value"] = "tk-TYPED-9999"
    response = save(client, source, name="", **typed)
    page = response.content.decode()
    assert response.status_code == 200 and "This field is required" in page
    assert "pw-TYPED-8888" not in page and "tk-TYPED-9999" not in page
    assert PASSWORD not in page


def test_it_refuses_changing_fields_and_replacing_all_at_once(client, owner, source):
    client.force_login(owner)
    response = save(client, source, credentials="{}", **{"field-2-value": "pw-NEW-5555"})
    assert "one at a time" in response.content.decode()
    assert stored(source) == FIELDS


def test_it_refuses_field_changes_from_a_page_loaded_before_another_change(client, owner, source):
    client.force_login(owner)
    data = edit_data(source, **{"field-2-value": "pw-NEW-5555"})
    services.connection_set_credentials(connection=source, credentials=json.dumps({"a": "b"}))
    source.save()
    response = client.post(reverse("connection_edit", args=[source.slug]), data)
    assert "changed since this page was loaded" in response.content.decode()
    assert stored(source) == {"a": "b"}


def test_it_replaces_all_credentials_keeping_the_owners_choices_by_name(client, owner, source):
    client.force_login(owner)
    save(client, source, **{"field-3-secret": "on"})  # the user name is secret
    replacement = json.dumps({"user": "svc_writer", "secret_word": "sw-SECRET-1212", "db": "x"})
    save(client, source, credentials=replacement)
    source.refresh_from_db()
    assert source.decrypted_credentials() == replacement  # exactly as typed
    assert source.secret_field_names() == ["user", "secret_word"]


def test_it_turns_plain_credentials_into_fields(client, owner):
    connection = make_connection(owner=owner, credentials="plain-SECRET-3333")
    client.force_login(owner)
    save(client, connection, **{"field-0-name": "bucket", "field-0-value": "flights"})
    assert stored(connection) == {"bucket": "flights"}  # the plain value is dropped


def test_it_replaces_plain_credentials_whole(client, owner):
    connection = make_connection(owner=owner, credentials="plain-SECRET-3333")
    client.force_login(owner)
    save(client, connection, credentials="plain-NEW-4444")
    connection.refresh_from_db()
    assert connection.decrypted_credentials() == "plain-NEW-4444"


def test_it_creates_a_connection_with_fields(client, owner):
    client.force_login(owner)
    client.post(reverse("connection_create"), {
        "name": "Bucket", "description": "", "packages": "", "library_code": "", "credentials": "",
        "field-0-name": "bucket", "field-0-value": "flights", "field-0-secret": "",
        "field-1-name": "access_key", "field-1-value": "ak-SECRET-1313", "field-1-secret": "",
    })  # fmt: skip
    connection = Connection.objects.get(name="Bucket")
    assert stored(connection) == {"bucket": "flights", "access_key": "ak-SECRET-1313"}
    page = client.get(reverse("connection_detail", args=[connection.slug])).content.decode()
    assert "flights" in page and "ak-SECRET-1313" not in page


def test_a_member_who_uses_the_connection_cannot_change_credentials(client, member, source):
    client.force_login(member)
    url = reverse("connection_edit", args=[source.slug])
    page = client.get(url).content.decode()
    assert 'name="field-' not in page and 'name="credentials"' not in page
    response = client.post(url, edit_data(source, description="member was here", **{
        "field-0-value": "evil.example.com", "field-2-value": "hijacked", "field-3-remove": "on",
        "field-6-name": "extra", "field-6-value": "x", "clear_credentials": "on",
    }))  # fmt: skip
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.description == "member was here"
    assert source.decrypted_credentials() == CREDENTIALS


def test_it_says_when_credentials_cannot_be_decrypted_and_lets_the_owner_replace_them(
    client, owner, source, staff
):
    client.force_login(owner)
    with override_settings(CREDENTIALS_KEYS=[Fernet.generate_key().decode()]):
        page = client.get(reverse("connection_detail", args=[source.slug])).content.decode()
        assert "cannot be decrypted" in page
        form = client.get(reverse("connection_edit", args=[source.slug])).content.decode()
        assert "cannot be decrypted" in form and 'name="field-' not in form
        data = {"name": source.name, "description": "", "packages": "", "library_code": "",
                "credentials": '{"host": "new"}'}  # fmt: skip
        client.post(reverse("connection_edit", args=[source.slug]), data)
        assert stored(source) == {"host": "new"}
        client.force_login(staff)
        url = reverse("admin:connections_connection_change", args=[source.pk])
        assert client.get(url).status_code == 200


# The admin


def admin_data(connection: Connection, **changes) -> dict:
    """What a staff browser sends for the admin's change form as shown, with `changes`."""
    data = edit_data(connection) | {
        "slug": connection.slug,
        "owner": connection.owner_id,
        "connectors-TOTAL_FORMS": "0",
        "connectors-INITIAL_FORMS": "0",
        "connectors-MIN_NUM_FORMS": "0",
        "connectors-MAX_NUM_FORMS": "1000",
    }
    data |= changes
    return {name: value for name, value in data.items() if value is not None}


def test_the_admin_shows_fields_that_are_not_secret_only(client, staff, source):
    client.force_login(staff)
    url = reverse("admin:connections_connection_change", args=[source.pk])
    page = client.get(url).content.decode()
    assert "db.example.com" in page and "svc_reader" in page and "set (secret)" in page
    assert 'name="field-2-value"' in page and 'name="field-6-name"' in page
    assert PASSWORD not in page and API_KEY not in page
    assert client.get(reverse("admin:connections_connection_add")).status_code == 200


def test_the_admin_changes_fields_and_logs_no_value(client, staff, source):
    client.force_login(staff)
    url = reverse("admin:connections_connection_change", args=[source.pk])
    response = client.post(url, admin_data(source, **{
        "field-2-value": "pw-NEW-5555", "field-3-remove": "on", "field-4-secret": None,
        "field-6-name": "token", "field-6-value": "tk-NEW-6666",
    }))  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    expected = FIELDS | {"password": "pw-NEW-5555", "token": "tk-NEW-6666"}
    del expected["user"]
    assert stored(source) == expected
    assert source.secret_field_names() == ["password", "token"]  # api_key is shown now

    message = LogEntry.objects.get(object_id=str(source.pk)).get_change_message()
    assert "password value" in message and "Remove user" in message
    history = client.get(reverse("admin:connections_connection_history", args=[source.pk]))
    for page in (message, history.content.decode(), client.get(url).content.decode()):
        assert "pw-NEW-5555" not in page and "tk-NEW-6666" not in page and PASSWORD not in page
