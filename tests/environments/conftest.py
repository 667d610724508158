"""Offline package environments for these tests: pip with no index, a fresh directory each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors_site import engine_config


@pytest.fixture(autouse=True)
def offline_environments(settings, tmp_path) -> Iterator[Path]:
    """Environments in a fresh directory, built by pip with no index (offline, fast)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ENVIRONMENTS_DIR = tmp_path / "environments"
    settings.ENVIRONMENT_PIP_ARGS = ["--isolated", "--no-index"]
    yield settings.ENVIRONMENTS_DIR
    engine_config.sandboxes().stop()
