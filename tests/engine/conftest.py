"""Fixtures shared by the sandbox and corpus tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def hidden_dir() -> Iterator[str]:
    """A directory outside /tmp holding a fake database file the sandbox must hide."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    path = tempfile.mkdtemp(prefix="cs-hidden-", dir=base)
    Path(path, "db.sqlite3").write_text("fake-db-content")
    yield path
    shutil.rmtree(path, ignore_errors=True)
