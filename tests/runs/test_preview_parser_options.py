"""Previews send the editor's csv parser options, saved or not, to the sandbox (real one)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connections.parser_options import csv_option_inputs
from connector_engine.protocol import Limits, SandboxRequest
from runs.models import Run, RunStatus
from runs.services import connector_request, preview_run
from tests.factories import make_connector

pytestmark = pytest.mark.django_db

CSV_CODE = """\
def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield "a;b\\n1;x\\n2;\\n"
"""


@pytest.fixture
def csv_connector(connection):
    return make_connector(
        connection=connection, name="Semicolons", code=CSV_CODE, interface="bytes", parser="csv"
    )


def preview(client, connector, action: str = "read", **fields):
    """Post what the editor posts: its code and settings and every csv input (defaults unless
    given)."""
    inputs = {name: value for name, value in csv_option_inputs({}).items() if value is not False}
    inputs = {name: "on" if value is True else value for name, value in inputs.items()}
    data = {
        "code": connector.code,
        "interface": "bytes",
        "parser": "csv",
        "packages": "",
        "limit": 100,
        **inputs,
    }
    return client.post(reverse("runs:preview", args=[connector.slug, action]), data | fields)


def test_a_preview_reads_with_the_editors_unsaved_delimiter(client, member, csv_connector):
    client.force_login(member)
    preview(client, csv_connector)  # the saved options: commas, so one column "a;b"
    default = Run.objects.latest("pk")
    assert [column["name"] for column in default.result["columns"]] == ["a;b"]

    response = preview(client, csv_connector, csv_delimiter=";")
    assert response.status_code == 200
    run = Run.objects.latest("pk")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert [column["name"] for column in run.result["columns"]] == ["a", "b"]
    assert run.result["rows"] == [[1, "x"], [2, None]]  # the empty field is null
    assert run.parameters["parser_options"] == {"delimiter": ";"}
    assert run.code_version is None  # not the saved connector's version
    csv_connector.refresh_from_db()
    assert csv_connector.parser_options == {}  # nothing was saved


def test_a_preview_without_the_inputs_uses_the_saved_options(csv_connector):
    csv_connector.parser_options = {"delimiter": ";", "null_values": []}
    csv_connector.save()
    run = preview_run(connector=csv_connector, action="read")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["rows"] == [[1, "x"], [2, ""]]  # empty fields are not null here
    # Another parser starts from no options (lines takes none).
    other = preview_run(connector=csv_connector, action="read", parser="lines")
    assert other.status == RunStatus.SUCCEEDED, other.error_message
    assert other.parameters["parser_options"] == {}


def test_bad_options_fail_the_preview_with_a_configuration_error(client, member, csv_connector):
    client.force_login(member)
    response = preview(client, csv_connector, csv_delimiter="")
    assert response.status_code == 200
    run = Run.objects.latest("pk")
    assert run.status == RunStatus.FAILED
    assert run.error_type == "ConfigurationError"
    assert run.error_message == "CSV parser option: delimiter must be one character, not ''"
    page = response.content.decode()
    assert "ConfigurationError" in page and "delimiter must be one character" in page


def test_the_request_carries_the_options_to_ingests_and_spark(csv_connector):
    csv_connector.parser_options = {"delimiter": ";"}
    request = connector_request(csv_connector, action="read", limits=Limits())
    assert request.parser_options == {"delimiter": ";"}
    # The Spark scale-out ships the request as a dict to its workers.
    assert SandboxRequest.from_dict(request.to_dict()).parser_options == {"delimiter": ";"}
    unsaved = connector_request(
        csv_connector, action="read", limits=Limits(), parser_options={"quote": ""}
    )
    assert unsaved.parser_options == {"quote": ""}
    pandas = connector_request(csv_connector, action="read", limits=Limits(), parser="")
    assert pandas.parser is None and pandas.parser_options == {}
