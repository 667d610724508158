"""Credentials: encrypted at rest, rotatable, never rendered back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db_connection
from django.test import override_settings

from connections import crypto, services
from connections.crypto import CredentialsUnreadable
from connections.models import Connection
from tests.factories import make_connection

SECRET = '{"user": "svc", "password": "pa55-SECRET-value"}'


@pytest.mark.django_db
def test_it_round_trips_credentials(owner):
    connection = make_connection(owner=owner, credentials=SECRET)
    reloaded = Connection.objects.get(pk=connection.pk)
    assert reloaded.decrypted_credentials() == SECRET
    assert SECRET not in reloaded.credentials_token
    assert reloaded.credentials_status.startswith("set, changed ")


@pytest.mark.django_db
def test_it_clears_credentials(owner):
    connection = make_connection(owner=owner, credentials=SECRET)
    services.connection_set_credentials(connection=connection, credentials="")
    connection.save()
    assert connection.decrypted_credentials() == ""
    assert connection.credentials_status == "not set"


@pytest.mark.django_db
def test_it_rotates_to_the_newest_key(owner, settings):
    old_key = settings.CREDENTIALS_KEYS[0]
    connection = make_connection(owner=owner, credentials=SECRET)
    old_token = connection.credentials_token
    new_key = Fernet.generate_key().decode()

    count = services.credentials_rotate(keys=[new_key, old_key])

    connection.refresh_from_db()
    assert count == 1
    assert connection.credentials_token != old_token
    # Only the new key is needed now: the old one can be dropped.
    assert (
        Fernet(new_key.encode()).decrypt(connection.credentials_token.encode()).decode() == SECRET
    )
    with override_settings(CREDENTIALS_KEYS=[new_key]):
        assert connection.decrypted_credentials() == SECRET


@pytest.mark.django_db
def test_it_rotates_with_a_generated_key_file(owner, settings, tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_KEYS", raising=False)
    key_file = tmp_path / "credentials_keys"
    key_file.write_text("\n".join(settings.CREDENTIALS_KEYS) + "\n")
    settings.CREDENTIALS_KEYS_FILE = key_file
    connection = make_connection(owner=owner, credentials=SECRET)

    call_command("rotate_credentials", "--new-key")

    keys = key_file.read_text().split()
    assert len(keys) == 2 and keys[1] == settings.CREDENTIALS_KEYS[0]
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    connection.refresh_from_db()
    with override_settings(CREDENTIALS_KEYS=keys[:1]):
        assert connection.decrypted_credentials() == SECRET


@pytest.mark.django_db
def test_it_says_when_no_key_fits(owner):
    connection = make_connection(owner=owner, credentials=SECRET)
    with (
        override_settings(CREDENTIALS_KEYS=[Fernet.generate_key().decode()]),
        pytest.raises(CredentialsUnreadable, match="cannot be decrypted"),
    ):
        connection.decrypted_credentials()


def test_it_does_not_use_the_secret_key(settings):
    assert settings.SECRET_KEY not in settings.CREDENTIALS_KEYS
    token = crypto.encrypt("x")
    with override_settings(SECRET_KEY="something-else-entirely"):
        assert crypto.decrypt(token) == "x"


@pytest.mark.django_db(transaction=True)
def test_it_stores_no_plaintext_in_the_database_file(owner):
    make_connection(owner=owner, credentials=SECRET)
    data = database_bytes()
    assert b"pa55-SECRET-value" not in data
    assert b"gAAAAA" in data  # the Fernet token is there instead


def database_bytes() -> bytes:
    """Every byte the database server keeps on disk for the test database."""
    if db_connection.vendor == "postgresql":
        # A checkpoint writes the changed pages into the table files (the WAL has them already).
        # The tests' cluster (tests/postgres.py) runs on this machine: read its whole directory.
        with db_connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
            cursor.execute("SHOW data_directory")
            directory = Path(cursor.fetchone()[0])
        if not directory.is_dir():
            pytest.skip(f"the PostgreSQL server's files ({directory}) are not on this machine")
        chunks = []
        for path in sorted(directory.rglob("*")):
            try:
                chunks.append(path.read_bytes() if path.is_file() else b"")
            except FileNotFoundError:  # the server removed a temporary file meanwhile
                continue
        return b"".join(chunks)
    db_path = Path(db_connection.settings_dict["NAME"])
    # Flush the write-ahead log into the main file so every committed byte is in one place.
    with db_connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(FULL)")
    # Read the files in another process: closing a descriptor of the database file in this
    # process would drop SQLite's POSIX locks held by this process's live connections.
    files = [str(path) for path in db_path.parent.glob(db_path.name + "*") if path.is_file()]
    return subprocess.run(["cat", *files], capture_output=True, check=True).stdout
