"""Fixtures of the ingest tests: a connector reading the fake source (tests/runs/ingest_helpers)."""

from __future__ import annotations

import pytest

from tests.factories import make_connector


@pytest.fixture
def source_connector(connection, source):
    return make_connector(connection=connection, name="Source", code=source.code)
