"""The editor of a spark connector says which Spark is in use and whether it is up."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_connector

pytestmark = pytest.mark.django_db

SPARK_CODE = """\
def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(3)
"""


def test_it_shows_the_local_server_status_on_spark_connectors(client, owner, connection):
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    client.force_login(owner)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'id="spark-status"' in page
    assert "Spark: local Spark Connect server" in page


def test_it_shows_a_configured_remote_without_its_token(client, owner, connection, settings):
    settings.SPARK_REMOTE = "sc://spark.example:15002/;token=very-secret-token"
    connector = make_connector(connection=connection, code=SPARK_CODE, interface="spark")
    client.force_login(owner)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert "Spark Connect at sc://spark.example:15002" in page
    assert "very-secret-token" not in page


def test_it_shows_no_spark_line_on_pandas_connectors(client, owner, connector):
    client.force_login(owner)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'id="spark-status"' not in page
