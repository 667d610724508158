"""Ingests from a real S3 API land exactly what the source has: moto's server on loopback, read
through boto3 installed in the connection's environment, with the bucket name, endpoint and
region in non-secret credential fields and the access keys in secret ones.

The bucket is named like its key prefix and the words in its objects' names and rows ("flights"),
so a value masked where it must not be would show in the partition names, the rows or the
metadata handed to the reader (a read of a masked key fails). Building the environment and
installing the server use the package index: `-m "not package_index"` leaves these tests out.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest

from connectors_site import engine_config
from runs import storage
from runs.models import Partition, PartitionJob, Run, RunStatus
from tests.factories import make_connection, make_connector
from tests.runs.ingest_helpers import committed, ingest
from tests.s3_server import MotoServer, S3Bucket

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.package_index,
    pytest.mark.usefixtures("ingest_settings", "shared_environments"),
]

BOTO3 = "boto3==1.44.18"
BUCKET = "flights"
REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# Lists the bucket as S3 shows it (prefixes by "/"), names as S3 gives them, the ETag as the
# fingerprint; reads each object's CSV as text, exactly.
S3_CODE = """
import io
import json
from urllib.parse import quote

import boto3
import pandas as pd


def context(credentials):
    fields = json.loads(credentials)
    client = boto3.client(
        "s3",
        endpoint_url=fields["endpoint_url"],
        region_name=fields["region"],
        aws_access_key_id=fields["aws_access_key_id"],
        aws_secret_access_key=fields["aws_secret_access_key"],
    )
    return {"s3": client, "fields": fields}


def list_objects(context, metadata):
    bucket = context["fields"]["bucket"]
    pages = context["s3"].get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=metadata["name"] if metadata else "", Delimiter="/"
    )
    for page in pages:
        for prefix in page.get("CommonPrefixes", []):
            yield {"name": prefix["Prefix"], "is_prefix": True}
        for item in page.get("Contents", []):
            yield {
                "name": item["Key"],
                "fingerprint": item["ETag"],
                "uri": "s3://" + bucket + "/" + item["Key"],
            }


def read_csv(context, key):
    response = context["s3"].get_object(Bucket=context["fields"]["bucket"], Key=key)
    return pd.read_csv(io.BytesIO(response["Body"].read()), dtype=str, keep_default_na=False)
"""

ROWS_CODE = (
    S3_CODE
    + """

def read_pandas_dataframe(context, metadata):
    return read_csv(context, metadata["name"])
"""
)

# Adds lineage made of the listing's metadata and the non-secret fields, and prints both kinds.
LINEAGE_CODE = (
    S3_CODE
    + """

def read_pandas_dataframe(context, metadata):
    fields = context["fields"]
    frame = read_csv(context, metadata["name"])
    frame["source"] = metadata["uri"]
    frame["etag"] = metadata["fingerprint"]
    frame["endpoint"] = fields["endpoint_url"]
    frame["region"] = fields["region"]
    print("reading", metadata["uri"], "from", fields["endpoint_url"], "in", fields["region"])
    print("as", fields["aws_access_key_id"], "with", fields["aws_secret_access_key"])
    print("url-encoded:", quote(fields["aws_secret_access_key"], safe=""))
    return frame
"""
)


def flights_csv(key: str, version: int = 1) -> bytes:
    """A CSV whose rows name their object and the bucket's word, with a quoted comma."""
    city = key.rsplit("/", 1)[-1].removesuffix(".csv")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["flight", "origin", "destination", "note"])
    for n in range(3):
        writer.writerow([f"FL{version}{n}", city, "LIS", f"flights from {city}, v{version}"])
    return out.getvalue().encode()


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


class FlightsBucket:
    """The source: the bucket on the server and what the test put in it."""

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, version: int = 1) -> None:
        self.objects[key] = flights_csv(key, version)
        self.bucket.put(key, self.objects[key])

    def delete(self, key: str) -> None:
        del self.objects[key]
        self.bucket.delete(key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket.name}/{key}"


@pytest.fixture(scope="module")
def environments_dir(tmp_path_factory) -> Iterator[Path]:
    """One environments directory for the module: the boto3 environment is built once."""
    assert importlib.util.find_spec("boto3") is None, (
        "boto3 is in the tests' interpreter: connector code would import it from there, not "
        "from the connection's environment"
    )
    yield tmp_path_factory.mktemp("environments")
    engine_config.sandboxes().stop()


@pytest.fixture
def shared_environments(settings, environments_dir) -> None:
    settings.ENVIRONMENTS_DIR = environments_dir


@pytest.fixture
def flights(s3_server: MotoServer) -> Iterator[FlightsBucket]:
    bucket = S3Bucket(s3_server.endpoint, BUCKET, REGION)
    bucket.create()
    yield FlightsBucket(bucket)
    bucket.destroy()


@pytest.fixture
def s3_connection(owner, s3_server: MotoServer):
    credentials = {
        "bucket": BUCKET,
        "endpoint_url": s3_server.endpoint,
        "region": REGION,
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
    }
    connection = make_connection(
        owner=owner, name="Flights S3", credentials=json.dumps(credentials), packages=BOTO3
    )
    secret = {field.name: field.secret for field in connection.credential_fields()}
    assert secret == {
        "bucket": False,
        "endpoint_url": False,
        "region": False,
        "aws_access_key_id": True,
        "aws_secret_access_key": True,
    }
    return connection


def fill(flights: FlightsBucket) -> None:
    for key in (
        "flights.csv",
        "flights/2024/flights-city-0.csv",
        "flights/2024/flights-city-1.csv",
        "flights/2025/flights-city-0.csv",
    ):
        flights.put(key)


def change(flights: FlightsBucket) -> None:
    """Add an object, change one, delete one."""
    flights.put("flights/2025/flights-city-1.csv")
    flights.put("flights/2024/flights-city-1.csv", version=2)
    flights.delete("flights/2024/flights-city-0.csv")


def ingested(connector) -> dict[str, list[dict]]:
    """{partition name: its Parquet rows, read back with pyarrow}."""
    return {
        partition.name: pq.read_table(storage.absolute_path(partition.storage_path)).to_pylist()
        for partition in Partition.objects.filter(connector=connector)
    }


def assert_succeeded(run: Run, counts: dict[str, int]) -> None:
    assert run.status == RunStatus.SUCCEEDED, (run.error_message, run.error_traceback)
    assert run.result["plan"]["counts"] == counts
    assert run.parameters["environment"]  # read in the connection's environment


def assert_partitions_equal_bucket(connector, flights: FlightsBucket) -> None:
    """Partition names and fingerprints are the bucket's keys and ETags, as the server lists
    them, and each partition's rows are its object's."""
    assert committed(connector) == flights.bucket.etags()
    assert ingested(connector) == {key: csv_rows(body) for key, body in flights.objects.items()}


def test_it_ingests_the_bucket_exactly_and_follows_its_changes(s3_connection, flights):
    connector = make_connector(connection=s3_connection, name="Flights", code=ROWS_CODE)
    fill(flights)
    assert_succeeded(ingest(connector), {"read": 4, "skip": 0, "delete": 0})
    assert_partitions_equal_bucket(connector, flights)

    change(flights)
    assert_succeeded(ingest(connector), {"read": 2, "skip": 2, "delete": 1})
    assert_partitions_equal_bucket(connector, flights)

    assert_succeeded(ingest(connector), {"read": 0, "skip": 4, "delete": 0})
    assert_partitions_equal_bucket(connector, flights)


def test_it_stores_the_credentials_non_secret_values_in_data_as_they_are(
    s3_connection, flights, s3_server
):
    connector = make_connector(connection=s3_connection, name="Lineage", code=LINEAGE_CODE)

    def expected() -> dict[str, list[dict]]:
        etags = flights.bucket.etags()
        lineage = {"endpoint": s3_server.endpoint, "region": REGION}
        return {
            key: [
                {**row, "source": flights.uri(key), "etag": etags[key], **lineage}
                for row in csv_rows(body)
            ]
            for key, body in flights.objects.items()
        }

    fill(flights)
    assert_succeeded(ingest(connector), {"read": 4, "skip": 0, "delete": 0})
    assert committed(connector) == flights.bucket.etags()
    assert ingested(connector) == expected()
    row = ingested(connector)["flights/2024/flights-city-0.csv"][0]
    assert row["source"] == "s3://flights/flights/2024/flights-city-0.csv"
    assert row["endpoint"] == s3_server.endpoint

    change(flights)
    assert_succeeded(ingest(connector), {"read": 2, "skip": 2, "delete": 1})
    assert committed(connector) == flights.bucket.etags()
    assert ingested(connector) == expected()


def test_a_printed_secret_is_masked_in_the_run_logs_and_configuration_is_not(
    s3_connection, flights, s3_server
):
    connector = make_connector(connection=s3_connection, name="Printing", code=LINEAGE_CODE)
    flights.put("flights/2024/flights-city-0.csv")
    run = ingest(connector)
    assert_succeeded(run, {"read": 1, "skip": 0, "delete": 0})

    logs = run.logs + "".join(PartitionJob.objects.filter(run=run).values_list("logs", flat=True))
    uri = "s3://flights/flights/2024/flights-city-0.csv"
    assert f"reading {uri} from {s3_server.endpoint} in {REGION}" in logs
    assert "as **** with ****" in logs
    assert "url-encoded: ****" in logs
    for secret in (ACCESS_KEY_ID, SECRET_ACCESS_KEY, quote(SECRET_ACCESS_KEY, safe="")):
        assert secret not in logs
    # What it landed is not masked.
    assert ingested(connector)["flights/2024/flights-city-0.csv"][0]["source"] == uri
