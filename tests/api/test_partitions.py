from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runs.models import Partition


@pytest.fixture
def partition(connector, settings, tmp_path) -> Partition:
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    path = settings.PARTITIONS_DIR / "orders" / "only.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"n": [1, 2, 3], "token": ["tok-SECRET-4242", "b", "c"]}), path)
    return Partition.objects.create(
        connector=connector,
        name="only",
        fingerprint="v1",
        row_count=3,
        bytes=path.stat().st_size,
        storage_path="orders/only.parquet",
    )


def test_it_lists_committed_partitions(viewer_api, connector, partition):
    listed = viewer_api.get(f"/api/v1/connectors/{connector.slug}/partitions").json()
    assert [(p["id"], p["name"], p["row_count"]) for p in listed] == [(partition.pk, "only", 3)]


def test_it_reads_a_partitions_rows_with_secrets_masked(viewer_api, connector, partition):
    url = f"/api/v1/connectors/{connector.slug}/partitions/{partition.pk}/rows?limit=2"
    body = viewer_api.get(url).json()
    assert [c["name"] for c in body["columns"]] == ["n", "token"]
    assert len(body["rows"]) == 2 and body["rows"][0][0] == 1
    assert "tok-SECRET-4242" not in str(body)


def test_it_answers_404_for_a_partition_of_another_connector(member_api, connector, partition):
    url = f"/api/v1/connectors/{connector.slug}/partitions/{partition.pk + 1}/rows"
    assert member_api.get(url).status_code == 404


def test_a_stranger_gets_404(stranger_api, connector, partition):
    base = f"/api/v1/connectors/{connector.slug}/partitions"
    assert stranger_api.get(base).status_code == 404
    assert stranger_api.get(f"{base}/{partition.pk}/rows").status_code == 404
