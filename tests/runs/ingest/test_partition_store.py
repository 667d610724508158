"""Partitions on an object store (PARTITIONS_URL=s3://bucket/prefix): moto's real S3 server on
loopback, pyarrow's S3 filesystem, real ingests in the sandbox.

There is no rename on S3: each version goes to a key of its own, the row is committed, then the
replaced key is deleted. The bucket is listed over plain HTTP (tests/s3_server.S3Bucket), not
through the code under test. Installing the server uses the package index: `-m "not
package_index"` leaves the S3 tests out (the settings checks stay).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection as db_connection

from connectors_site import engine_config
from runs import selectors, storage
from runs.ingest import services
from runs.models import Partition, PartitionJob, Run, RunStatus
from tests.runs.ingest_helpers import FakeSource, committed, ingest
from tests.s3_server import MotoServer, S3Bucket

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ingest_settings")]
s3 = pytest.mark.package_index

REGION = "eu-west-1"
PREFIX = "lake/partitions"


class Store:
    """The bucket the partitions go to, listed by the server itself."""

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket

    def objects(self) -> set[str]:
        """Storage paths of the objects under the prefix (directory markers aside)."""
        return {
            key.removeprefix(PREFIX + "/")
            for key in self.bucket.etags()
            if key.startswith(PREFIX + "/") and not key.endswith("/")
        }

    def markers(self) -> set[str]:
        return {key for key in self.bucket.etags() if key.endswith("/")}


@pytest.fixture
def store(s3_server: MotoServer, settings) -> Iterator[Store]:
    bucket = S3Bucket(s3_server.endpoint, f"partitions-{uuid.uuid4().hex[:12]}", REGION)
    bucket.create()
    settings.PARTITIONS_URL = f"s3://{bucket.name}/{PREFIX}/"
    settings.PARTITIONS_S3_ENDPOINT_URL = s3_server.endpoint
    settings.PARTITIONS_S3_REGION = REGION
    settings.PARTITIONS_S3_ACCESS_KEY_ID = "AKIAPARTITIONS"
    settings.PARTITIONS_S3_SECRET_ACCESS_KEY = "partitions-secret"
    yield Store(bucket)
    bucket.destroy()


def read_back(partition: Partition) -> pa.Table:
    with storage.open_partition(partition.storage_path) as source:
        return pq.read_table(source)


def assert_store_matches_source(connector, source: FakeSource, store: Store) -> None:
    """The committed partitions equal the source; their objects hold their rows; the bucket
    holds those objects and nothing else."""
    assert committed(connector) == source.expected()
    partitions = Partition.objects.filter(connector=connector)
    for partition in partitions:
        entry = source.entries[partition.name]
        table = read_back(partition)
        assert table.num_rows == entry["rows"] == partition.row_count
        assert table.column("i").to_pylist() == list(range(entry["rows"]))
        assert set(table.column("fingerprint").to_pylist()) <= {entry["fingerprint"]}
    assert store.objects() == {partition.storage_path for partition in partitions}
    assert storage.stored_paths(connector.pk) == store.objects()


@s3
def test_it_ingests_into_s3_and_follows_the_source(source_connector, source, store, settings):
    for name in ("keep", "change", "vanish", "2024/../../odd"):
        source.set(name, "v1", rows=3)
    run = ingest(source_connector)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert_store_matches_source(source_connector, source, store)
    assert not settings.PARTITIONS_DIR.exists()  # nothing went to the local directory
    first = dict(Partition.objects.values_list("name", "storage_path"))
    assert all(path.startswith(f"{source_connector.pk}/") for path in first.values())

    source.set("change", "v2", rows=5)
    source.remove("vanish")
    source.set("new", "v1")
    run = ingest(source_connector)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["plan"]["counts"] == {"read": 2, "skip": 2, "delete": 1}
    assert_store_matches_source(source_connector, source, store)
    assert first["change"] not in store.objects() and first["vanish"] not in store.objects()
    assert Partition.objects.get(name="keep").storage_path == first["keep"]
    assert storage.connector_directories() == [source_connector.pk]


@s3
def test_a_missing_bucket_fails_each_partition_with_the_stores_error(
    source_connector, source, store, settings
):
    source.set("orders", "v1")
    settings.PARTITIONS_URL = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/{PREFIX}"
    run = ingest(source_connector)
    assert run.status == RunStatus.FAILED
    job = PartitionJob.objects.get(run=run, name="orders")
    assert job.error_type == "StorageError"
    assert job.error_message.startswith("Writing the partition failed: ")
    assert "NO_SUCH_BUCKET" in job.error_message
    assert not Partition.objects.exists()


@s3
def test_a_reread_of_the_same_version_gets_a_key_of_its_own(store):
    path = storage.partition_storage_path(7, "orders", "etag-1", "code-1")
    table = pa.table({"n": [1, 2]})
    first = storage.publish_partitions([storage.stage_table(table, path)])[0]
    second = storage.publish_partitions([storage.stage_table(table, path)])[0]
    assert first.storage_path != second.storage_path
    stem = path.removesuffix(".parquet")
    for written in (first, second):
        assert written.storage_path.startswith(stem + ".")
        assert written.storage_path.endswith(".parquet") and written.rows == 2
    assert store.objects() == {first.storage_path, second.storage_path}


def refuse_partition_updates() -> None:
    """Make the database refuse every update of a Partition row, as a failed commit."""
    with db_connection.cursor() as cursor:
        if db_connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER refuse_partition_updates BEFORE UPDATE ON runs_partition "
                "BEGIN SELECT RAISE(ABORT, 'commit refused'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION refuse_partition_updates() RETURNS trigger AS "
                "$$ BEGIN RAISE EXCEPTION 'commit refused'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_partition_updates BEFORE UPDATE ON runs_partition "
                "FOR EACH ROW EXECUTE FUNCTION refuse_partition_updates()"
            )


def allow_partition_updates() -> None:
    with db_connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER refuse_partition_updates"
            + ("" if db_connection.vendor == "sqlite" else " ON runs_partition")
        )


@s3
def test_a_replaced_key_is_deleted_only_after_the_commit(source_connector, source, store):
    source.set("orders", "v1", rows=2)
    assert ingest(source_connector).status == RunStatus.SUCCEEDED
    old = Partition.objects.get(name="orders")

    source.set("orders", "v2", rows=4)
    refuse_partition_updates()  # the new version is written, its commit fails
    run = ingest(source_connector)
    assert run.status == RunStatus.FAILED
    assert "commit refused" in run.error_message
    # The committed row and its object are untouched; the new object is there, unreferenced.
    partition = Partition.objects.get(name="orders")
    assert (partition.storage_path, partition.fingerprint) == (old.storage_path, "v1")
    assert read_back(partition).num_rows == 2
    (orphan,) = store.objects() - {old.storage_path}
    assert orphan.startswith(f"{source_connector.pk}/")
    with storage.open_partition(orphan) as stream:
        assert pq.read_table(stream).num_rows == 4

    allow_partition_updates()
    run = ingest(source_connector)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert_store_matches_source(source_connector, source, store)
    assert old.storage_path not in store.objects() and orphan not in store.objects()


@s3
def test_a_crash_between_write_and_commit_leaves_a_key_the_sweep_removes(
    source_connector, source, store
):
    source.set("orders", "v1", rows=2)
    assert ingest(source_connector).status == RunStatus.SUCCEEDED
    kept = Partition.objects.get(name="orders").storage_path
    # What a run killed after its upload and before its commit leaves behind.
    path = storage.partition_storage_path(source_connector.pk, "orders", "v2", "code")
    written = storage.stage_table(pa.table({"n": [1]}), path).written
    other = storage.partition_storage_path(source_connector.pk, "lost", "v1", "code")
    stray = storage.stage_table(pa.table({"n": [1]}), other).written
    assert store.objects() == {kept, written.storage_path, stray.storage_path}

    run = ingest(source_connector)  # sweeps before it reads (here: nothing to read)
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["plan"]["counts"] == {"read": 0, "skip": 1, "delete": 0}
    assert store.objects() == {kept}
    # The partition key left empty goes too, marker and all.
    assert not any(storage.partition_key("lost") in marker for marker in store.markers())
    assert_store_matches_source(source_connector, source, store)


@s3
def test_the_preview_reads_a_partition_from_s3(source_connector, source, store):
    source.set("orders", "v1", rows=150)
    assert ingest(source_connector).status == RunStatus.SUCCEEDED
    partition = Partition.objects.get(name="orders")

    preview = selectors.partition_preview(partition, limit=10)
    assert [column["name"] for column in preview["columns"]] == ["name", "fingerprint", "i"]
    assert [row[2] for row in preview["rows"]] == list(range(10))
    assert preview["row_count"] == 150 and preview["truncated"] is True

    store.bucket.delete(f"{PREFIX}/{partition.storage_path}")
    missing = selectors.partition_preview(partition)
    assert missing["error"].startswith(f"cannot read {partition.storage_path}: ")


@s3
def test_a_spark_written_file_is_uploaded_and_its_local_file_removed(store, tmp_path):
    source = tmp_path / "part-00000.parquet"
    pq.write_table(pa.table({"city": ["Lisbon", "Porto", "Faro"]}), source)
    size = source.stat().st_size
    path = storage.partition_storage_path(3, "cities", "etag", "code")

    staged = storage.stage_parquet_file(source, path)
    (written,) = storage.publish_partitions([staged])
    assert not source.exists()
    assert (written.rows, written.bytes) == (3, size)
    assert written.schema == [{"name": "city", "type": "string"}]
    assert store.objects() == {written.storage_path}
    with storage.open_partition(written.storage_path) as stream:
        assert pq.read_table(stream).column("city").to_pylist() == ["Lisbon", "Porto", "Faro"]

    storage.discard_staged(staged)  # as a row count the reader disputes does
    assert store.objects() == set()


@s3
@pytest.mark.spark
@pytest.mark.usefixtures("spark_server")
def test_a_spark_scale_out_ingest_lands_its_files_in_s3(source_connector, source, store, settings):
    source.set("a", "v1", rows=5)
    source.set("2024/b.csv", "v1", rows=2)
    run = ingest(source_connector, engine="spark")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert_store_matches_source(source_connector, source, store)
    assert not any(settings.SPARK_STAGING_DIR.glob("*")), "staging left behind"
    assert not settings.PARTITIONS_DIR.exists()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("gs://bucket/prefix", "has the scheme 'gs'"),
        ("s3://Bad_Bucket/prefix", "'Bad_Bucket' is not a valid S3 bucket name"),
        ("s3://bucket/a/../b", "the prefix segment '..'"),
        ("s3://bucket/a//b", "the prefix segment ''"),
        ("s3://bucket/prefix?versionId=1", "has a query or a fragment"),
        ("relative/partitions", "is a relative path"),
    ],
)
def test_a_bad_url_says_what_is_wrong_with_it(settings, url, problem):
    settings.PARTITIONS_URL = url
    with pytest.raises(ImproperlyConfigured, match="PARTITIONS_URL") as raised:
        storage.partition_store()
    assert problem in str(raised.value)


def test_credentials_in_the_url_are_refused_without_being_repeated(settings):
    settings.PARTITIONS_URL = "s3://AKIAKEY:very-secret@bucket/prefix"
    with pytest.raises(ImproperlyConfigured, match="must not hold credentials") as raised:
        storage.partition_store()
    assert "very-secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("PARTITIONS_S3_ENDPOINT_URL", "ftp://minio:9000", "must be http(s)://host[:port]"),
        ("PARTITIONS_S3_ENDPOINT_URL", "http://minio:9000/path", "with no path"),
        ("PARTITIONS_S3_ENDPOINT_URL", "http://minio:port", "Port could not be cast"),
        ("PARTITIONS_S3_ACCESS_KEY_ID", "AKIAONLY", "go together"),
    ],
)
def test_bad_s3_settings_say_what_is_wrong(settings, name, value, problem):
    settings.PARTITIONS_URL = "s3://bucket/prefix"
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured) as raised:
        storage.partition_store()
    assert problem in str(raised.value)


def test_an_ingest_with_a_bad_url_is_refused_naming_the_problem(source_connector, settings):
    settings.PARTITIONS_URL = "s3:///partitions"
    with pytest.raises(ImproperlyConfigured, match="'s3:///partitions' names no bucket"):
        services.ingest_create(connector=source_connector)
    assert not Run.objects.exists() and not Partition.objects.exists()


def test_a_local_url_is_the_store_and_hidden_from_user_code(
    source_connector, source, settings, tmp_path
):
    settings.PARTITIONS_URL = str(tmp_path / "elsewhere")
    source.set("orders", "v1", rows=2)
    assert ingest(source_connector).status == RunStatus.SUCCEEDED
    partition = Partition.objects.get(name="orders")
    path = tmp_path / "elsewhere" / partition.storage_path
    assert storage.absolute_path(partition.storage_path) == path.resolve()
    assert pq.read_table(path).num_rows == 2
    assert not settings.PARTITIONS_DIR.exists()
    assert str(tmp_path / "elsewhere") in engine_config.hidden_paths()
