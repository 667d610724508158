"""Settings come from the environment; bad values stop start-up with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from connectors_site import settings as site_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("helper", "name", "raw", "message"),
    [
        (lambda: site_settings.envbool("X_FLAG", False), "X_FLAG", "maybe", "boolean"),
        (lambda: site_settings.envint("X_INT", 1), "X_INT", "ten", "integer"),
        (lambda: site_settings.envint("X_INT", 1, minimum=1), "X_INT", "0", "at least 1"),
        (lambda: site_settings.envfloat("X_NUM", 1.0), "X_NUM", "fast", "number"),
    ],
)
def test_it_rejects_bad_values(monkeypatch, helper, name, raw, message):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        helper()


def test_it_reads_good_values(monkeypatch):
    monkeypatch.setenv("X_FLAG", "Yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert site_settings.envbool("X_FLAG", False) is True
    assert site_settings.envint("X_INT", 1) == 42
    assert site_settings.envlist("X_LIST", []) == ["a", "b", "c"]


def test_it_reads_secrets_from_files(monkeypatch, tmp_path):
    (tmp_path / "s").write_text("from-a-file\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "s"))
    assert site_settings.envsecret("X_SECRET") == "from-a-file"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "must start with sqlite:// or postgres://"),
        ("postgres://user@host:port/db", "port is not a number"),
        ("postgres://user@host:5432/", "needs a database name"),
        ("sqlite://", "needs a file path"),
    ],
)
def test_it_rejects_bad_database_urls(url, message, tmp_path):
    with pytest.raises(ImproperlyConfigured, match=message):
        site_settings.database_from_url(url, tmp_path)


def test_it_reads_database_urls(tmp_path):
    pg = site_settings.database_from_url("postgres://u:p%40ss@db.local:5433/studio", tmp_path)
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "studio",
        "u",
        "p@ss",
        "db.local",
        "5433",
    )
    assert site_settings.database_from_url("sqlite:///x.db", tmp_path)["NAME"] == tmp_path / "x.db"
    assert site_settings.database_from_url("sqlite:////abs/x.db", tmp_path)["NAME"] == Path(
        "/abs/x.db"
    )


def start_django(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"CREDENTIALS_KEYS", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean | {"DATA_DIR": str(tmp_path / "data")} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_generates_private_keys_once_on_a_fresh_data_dir(tmp_path):
    assert start_django(tmp_path).returncode == 0
    data = tmp_path / "data"
    first = {name: (data / name).read_text() for name in ("secret_key", "credentials_keys")}
    for name in first:
        assert oct((data / name).stat().st_mode & 0o777) == "0o600"
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    assert start_django(tmp_path).returncode == 0
    assert first == {name: (data / name).read_text() for name in first}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "perhaps"}, "DEBUG must be a boolean"),
        ({"CREDENTIALS_KEYS": "not-a-key"}, "key 1 is not a Fernet key"),
        ({"DATABASE_URL": "oracle://x/y"}, "DATABASE_URL must start with"),
        ({"PREVIEW_TIMEOUT_S": "soon"}, "PREVIEW_TIMEOUT_S must be a number"),
    ],
)
def test_it_refuses_to_start_with_bad_settings(tmp_path, env, message):
    result = start_django(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
