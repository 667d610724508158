"""Ingest services: one writing ingest per connector; cancelling queued and finished runs."""

from __future__ import annotations

import pytest

from runs.ingest import services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]


def test_only_one_ingest_per_connector_is_active(source_connector, source):
    source.set("a", "v1")
    first = services.ingest_create(connector=source_connector)
    with pytest.raises(services.IngestAlreadyActive) as raised:
        services.ingest_create(connector=source_connector)
    assert raised.value.run == first
    assert services.ingest_create(connector=source_connector, dry_run=True).dry_run
