"""CSV parser options on the connector: the editor's inputs, saving, validation and versions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from connections import services
from connections.parser_options import csv_option_inputs
from connector_engine.ingest.inputs import changed_inputs
from runs.ingest.planning import ingest_inputs
from tests.factories import make_connector

pytestmark = pytest.mark.django_db

CSV_CODE = """\
def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield "a;b\\n1;x\\n"
"""


@pytest.fixture
def csv_connector(connection):
    return make_connector(
        connection=connection, name="Semicolons", code=CSV_CODE, interface="bytes", parser="csv"
    )


def editor_form(connector, **csv) -> dict:
    """What the editor posts: code, interface, parser, packages and every csv input (the
    untouched defaults unless given; a checkbox left out is unticked)."""
    inputs = {name: value for name, value in csv_option_inputs({}).items() if value is not False}
    inputs = {name: "on" if value is True else value for name, value in inputs.items()}
    data = {
        "code": connector.code,
        "interface": connector.interface,
        "parser": connector.parser,
        "packages": connector.packages,
    }
    return {**data, **inputs, **csv}


def save(client, connector, data: dict):
    return client.post(reverse("connector_save", args=[connector.slug]), data)


def test_it_keeps_an_untouched_connector_at_no_options(client, owner, csv_connector):
    client.force_login(owner)
    response = save(client, csv_connector, editor_form(csv_connector, code=CSV_CODE + "\n"))
    assert response.json()["saved"] is True
    csv_connector.refresh_from_db()
    assert csv_connector.parser_options == {}
    assert csv_connector.latest_version.parser_options == {}


def test_it_saves_only_the_options_that_differ_and_shows_them(client, owner, csv_connector):
    client.force_login(owner)
    data = editor_form(
        csv_connector,
        csv_delimiter="\\t",
        csv_encoding="latin-1",
        csv_null_values=" NA ,NULL,, ",
        csv_skip_rows="2",
    )
    del data["csv_header"]  # unticked
    response = save(client, csv_connector, data).json()
    assert response == {
        "saved": True,
        "new_version": True,
        "version": 2,
        "message": "Saved as version 2.",
    }
    csv_connector.refresh_from_db()
    expected = {
        "delimiter": "\t",
        "header": False,
        "encoding": "latin-1",
        "null_values": ["", "NA", "NULL"],
        "skip_rows": 2,
    }
    assert csv_connector.parser_options == expected
    assert csv_connector.latest_version.parser_options == expected

    page = client.get(reverse("connector_editor", args=[csv_connector.slug])).content.decode()
    assert 'id="csv-options" role="group"' in page  # shown: the parser is csv
    assert 'name="csv_delimiter" value="\\t"' in page
    assert 'name="csv_null_values" value="NA, NULL"' in page
    assert 'name="csv_header" class="form-check-input" id="id_csv_header">' in page  # unticked
    empty_is_null = 'name="csv_empty_is_null" class="form-check-input" id="id_csv_empty_is_null"'
    assert f"{empty_is_null} checked>" in page


def test_the_options_are_hidden_and_dropped_for_another_parser(client, owner, csv_connector):
    client.force_login(owner)
    save(client, csv_connector, editor_form(csv_connector, csv_delimiter=";"))
    csv_connector.refresh_from_db()
    assert csv_connector.parser_options == {"delimiter": ";"}
    save(client, csv_connector, editor_form(csv_connector, parser="jsonl", csv_delimiter=";"))
    csv_connector.refresh_from_db()
    assert csv_connector.parser == "jsonl" and csv_connector.parser_options == {}
    page = client.get(reverse("connector_editor", args=[csv_connector.slug])).content.decode()
    assert 'id="csv-options" hidden role="group"' in page


def test_it_refuses_bad_options_on_save_with_the_engines_message(client, owner, csv_connector):
    client.force_login(owner)
    response = save(client, csv_connector, editor_form(csv_connector, csv_delimiter=";;"))
    assert response.status_code == 400
    (error,) = response.json()["errors"]["__all__"]
    assert error["message"] == "CSV parser option: delimiter must be one character, not ';;'"
    response = save(client, csv_connector, editor_form(csv_connector, csv_encoding="klingon"))
    (error,) = response.json()["errors"]["__all__"]
    assert error["message"] == "CSV parser option: unknown encoding 'klingon'"
    response = save(client, csv_connector, editor_form(csv_connector, csv_skip_rows="-1"))
    (error,) = response.json()["errors"]["__all__"]
    assert error["message"] == "CSV parser option: skip_rows must be 0 or more, not -1"
    csv_connector.refresh_from_db()
    assert csv_connector.parser_options == {} and csv_connector.versions.count() == 1


def test_the_model_refuses_bad_options_too(csv_connector):
    with pytest.raises(ValidationError) as raised:
        services.connector_save_code(
            connector=csv_connector,
            code=CSV_CODE,
            packages="",
            interface="bytes",
            parser="csv",
            parser_options={"sep": ";"},
        )
    assert "unknown option 'sep'" in str(raised.value.message_dict["parser_options"])
    with pytest.raises(ValidationError):
        services.connector_save_code(
            connector=csv_connector,
            code=CSV_CODE,
            packages="",
            interface="bytes",
            parser="jsonl",
            parser_options={"delimiter": ";"},
        )


def test_a_change_of_options_alone_is_a_version_and_revert_restores_them(csv_connector):
    changed = services.connector_save_code(
        connector=csv_connector,
        code=CSV_CODE,
        packages="",
        interface="bytes",
        parser="csv",
        parser_options={"delimiter": ";"},
    )
    assert changed is not None and changed.number == 2
    assert changed.fingerprint != csv_connector.versions.get(number=1).fingerprint
    services.connector_revert(connector=csv_connector, version=csv_connector.versions.get(number=1))
    csv_connector.refresh_from_db()
    assert csv_connector.parser_options == {}
    services.connector_revert(connector=csv_connector, version=changed)
    csv_connector.refresh_from_db()
    assert csv_connector.parser_options == {"delimiter": ";"}


def test_the_options_are_in_the_ingest_code_fingerprint(csv_connector):
    before = ingest_inputs(csv_connector)
    assert "parser_options" not in before  # an untouched connector's fingerprint is unchanged
    csv_connector.parser_options = {"delimiter": ";"}
    after = ingest_inputs(csv_connector)
    assert changed_inputs(before, after) == ["parser options"]
