"""Every path a setting names for secrets or data is hidden from connector code, wherever the
operator puts it: key and secret files, partitions, environments, Spark's folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from connector_engine.protocol import SandboxRequest
from connector_engine.sandbox import Sandbox, run_action
from connectors_site import engine_config

PROBE = """
import pandas as pd

TARGETS = TARGET_LIST


def list_objects(context, metadata):
    yield {"name": "probe", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    found = []
    for path in TARGETS:
        try:
            with open(path, "rb") as handle:
                found.append(handle.read().decode(errors="replace"))
        except OSError as exc:
            found.append(type(exc).__name__)
    return pd.DataFrame({"path": TARGETS, "found": found})
"""


@pytest.fixture
def outside():
    """A folder outside DATA_DIR and outside /tmp, as an operator might configure."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="cs-outside-", dir=base))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def plant(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_files_settings_name_outside_the_data_dir_are_hidden(settings, outside):
    settings.CREDENTIALS_KEYS_FILE = outside / "keys" / "credentials_keys"
    settings.SECRET_FILES = [outside / "secrets" / "secret_key"]
    settings.PARTITIONS_DIR = outside / "partitions"
    settings.ENVIRONMENTS_DIR = outside / "environments"
    settings.SPARK_DIR = outside / "spark"
    settings.SPARK_STAGING_DIR = outside / "staging"
    targets = [
        plant(settings.CREDENTIALS_KEYS_FILE, "FERNET-KEY-SECRET"),
        plant(settings.SECRET_FILES[0], "DJANGO-SECRET-KEY"),
        plant(settings.PARTITIONS_DIR / "7" / "other.parquet", "OTHER-CONNECTION-DATA"),
        plant(settings.ENVIRONMENTS_DIR / "abc" / "private.py", "OTHER-CONNECTION-CODE"),
        plant(settings.SPARK_DIR / "connect-server.json", "SPARK-TOKEN"),
        plant(settings.SPARK_STAGING_DIR / "run-1" / "part.parquet", "STAGED-DATA"),
    ]
    readable = plant(outside / "sources" / "orders.csv", "id\n1\n")
    # Even when the operator lets connector code read the folder that holds them.
    sandbox = Sandbox(hidden_paths=engine_config.hidden_paths(), readable_paths=[outside])
    targets.append(readable)
    try:
        code = PROBE.replace("TARGET_LIST", repr(targets))
        result = run_action(SandboxRequest(action="read", code=code), sandbox=sandbox)
    finally:
        sandbox.stop()

    assert result.ok, result.error
    found = dict(result.result["rows"])
    assert set(found) == set(targets)
    assert found.pop(readable) == "id\n1\n"
    for path, content in found.items():
        # A hidden directory is an empty tmpfs (the file is not there); a hidden file is empty;
        # and connector code, never root on host files, cannot enter a private directory.
        assert content in {"FileNotFoundError", "PermissionError", ""}, (path, content)


def test_settings_note_the_files_secrets_came_from(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-a-file")
    script = "from django.conf import settings; print(settings.SECRET_FILES)"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=django_settings.BASE_DIR,
        env={
            **{k: v for k, v in os.environ.items() if k != "SECRET_KEY"},
            "DJANGO_SETTINGS_MODULE": "connectors_site.settings",
            "SECRET_KEY_FILE": str(key_file),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert str(key_file) in result.stdout


HOME_PROBE = """
import os
import pandas as pd
import tomllib  # a module the fork server has not imported: the interpreter stays reachable


def list_objects(context, metadata):
    yield {"name": "probe", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    try:
        with open(TARGET) as handle:
            found = handle.read()
    except OSError as exc:
        found = type(exc).__name__
    return pd.DataFrame({"found": [found], "toml": [tomllib.loads("a = 1")["a"]]})
"""


def test_the_server_users_home_is_hidden_and_the_interpreter_still_works():
    home = Path.home()
    if Path(django_settings.BASE_DIR).is_relative_to(home):
        pytest.skip("the app lives in the home directory: its data directory is hidden instead")
    secret = home / f".cs-test-netrc-{os.getpid()}"
    secret.write_text("machine example.com password hunter2")
    sandbox = Sandbox(hidden_paths=engine_config.hidden_paths())
    try:
        code = HOME_PROBE.replace("TARGET", repr(str(secret)))
        result = run_action(SandboxRequest(action="read", code=code), sandbox=sandbox)
    finally:
        sandbox.stop()
        secret.unlink()

    assert result.ok, result.error
    assert result.result["rows"] == [["FileNotFoundError", 1]]
