"""The example connection and connectors (the spark_server fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture
def examples(staff):
    call_command("load_examples")
