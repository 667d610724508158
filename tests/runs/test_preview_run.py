"""runs.services.preview_run: a preview runs in the sandbox and is recorded as a Run."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from connections.models import Connector
from connectors_site import engine_config
from runs.models import Run, RunStatus
from runs.services import preview_run
from tests.factories import TRIVIAL_CODE, make_connector

pytestmark = pytest.mark.django_db

SECRET = "tok-SECRET-4242"


def test_it_records_a_successful_read(connector, owner):
    run = preview_run(connector=connector, action="read", user=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.kind == "read" and run.user == owner
    assert run.result["rows"] == [[1], [2], [3]]
    assert run.result["columns"] == [{"name": "n", "type": "int64"}]
    assert run.code_version == connector.latest_version
    assert run.duration_ms is not None and run.started_at and run.finished_at
    assert run.isolation


def test_it_records_unsaved_code_without_a_version(connector):
    code = TRIVIAL_CODE.replace("[1, 2, 3]", "[7]")
    run = preview_run(connector=connector, action="read", code=code)
    assert run.code_version is None
    assert run.parameters["unsaved_code"] is True
    assert run.result["rows"] == [[7]]
    connector.refresh_from_db()
    assert "[1, 2, 3]" in connector.code  # a preview never saves


def test_it_records_the_users_error_with_its_line(connector):
    code = TRIVIAL_CODE.replace(
        'return pd.DataFrame({"n": [1, 2, 3]})', 'raise ValueError("no such table")'
    )
    run = preview_run(connector=connector, action="read", code=code)
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ValueError"
    assert run.error_message == "no such table"
    assert run.error_function == "read_pandas_dataframe"
    assert run.error_line == code.splitlines().index('    raise ValueError("no such table")') + 1


def test_it_marks_a_timeout(connector):
    code = TRIVIAL_CODE.replace(
        'return pd.DataFrame({"n": [1, 2, 3]})', "while True:\n        pass"
    )
    run = preview_run(connector=connector, action="read", code=code, timeout_s=1.0)
    assert run.status == RunStatus.TIMED_OUT
    assert run.error_type == "Timeout"


def test_it_masks_credentials_in_what_it_stores(connection):
    code = (
        "def context(credentials):\n"
        "    print('creds are', credentials)\n"
        "    return {'raw': credentials}\n\n" + TRIVIAL_CODE
    )
    connector = make_connector(connection=connection, name="Leaky", code=code)
    run = preview_run(connector=connector, action="context")
    stored = json.dumps([run.result, run.logs, run.error_message])
    assert SECRET not in stored
    assert "****" in run.logs
    raw = Run.objects.filter(pk=run.pk).values_list("logs", "result").get()
    assert SECRET not in json.dumps(raw)


@pytest.fixture
def examples(staff):
    call_command("load_examples")


def test_it_previews_the_pandas_example(examples):
    connector = Connector.objects.get(slug="languages-pandas")
    listing = preview_run(connector=connector, action="list")
    assert listing.status == RunStatus.SUCCEEDED, listing.error_message
    assert listing.result["leaf_count"] == 6  # 1950s … 2010s
    read = preview_run(connector=connector, action="read", object={"name": "1990s"})
    assert read.status == RunStatus.SUCCEEDED, read.error_message
    assert [row[0] for row in read.result["rows"]] == [
        "Haskell",
        "Python",
        "Java",
        "JavaScript",
        "Ruby",
    ]
    schema = preview_run(connector=connector, action="schema")
    assert schema.status == RunStatus.SUCCEEDED, schema.error_message
    assert [f["name"] for f in schema.result["declared"]] == [
        "language",
        "first_appeared",
        "designed_by",
        "paradigm",
    ]


def test_it_lists_and_reads_the_csv_folder_example(examples):
    connector = Connector.objects.get(slug="sales-csv-folders")
    listing = preview_run(connector=connector, action="list")
    assert listing.status == RunStatus.SUCCEEDED, listing.error_message
    objects = listing.result["objects"]
    assert listing.result["leaf_count"] == 10
    assert {o["depth"] for o in objects} == {0, 1, 2}
    leaf = next(o for o in objects if o["name"] == "emea/2025/2025-01.csv")
    assert leaf["parent"] == "emea/2025" and len(leaf["fingerprint"]) == 64
    read = preview_run(connector=connector, action="read", object=leaf)
    assert read.status == RunStatus.SUCCEEDED, read.error_message
    assert [c["name"] for c in read.result["columns"]] == [
        "order_id",
        "order_date",
        "product",
        "quantity",
        "unit_price",
    ]
    assert read.result["row_count"] >= 8


def test_it_lists_the_spark_example_without_starting_spark(examples):
    connector = Connector.objects.get(slug="languages-spark")
    starts = engine_config.spark_server().starts
    run = preview_run(connector=connector, action="list")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["leaf_count"] == 6
    assert (
        engine_config.spark_server().starts == starts
    )  # only reads and schemas need Spark (tests/spark)
