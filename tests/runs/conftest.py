"""Fixtures for the ingest tests: a fake source readable from the sandbox, and fast settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runs.ingest_helpers import FakeSource


@pytest.fixture
def source() -> Iterator[FakeSource]:
    source = FakeSource()
    yield source
    source.cleanup()


@pytest.fixture
def ingest_settings(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    settings.INGEST_CONCURRENCY = 2
