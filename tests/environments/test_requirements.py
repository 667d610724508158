"""Requirement lines are validated on save: one message per bad line, with its number."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from connections import services
from connections.forms import ConnectionForm, ConnectorCodeForm
from connector_engine.environments.requirements import parse_requirements
from connector_engine.environments.spec import environment_spec

pytestmark = pytest.mark.django_db

GOOD = """
# shared by every connector
requests>=2.31  # inline comment
tinypkg==0.1
attrs[tests]; python_version >= "3.8"
"""


def test_it_accepts_comments_blank_lines_extras_and_markers():
    requirements, problems = parse_requirements(GOOD)
    assert problems == []
    assert requirements == [
        "requests>=2.31",
        "tinypkg==0.1",
        'attrs[tests]; python_version >= "3.8"',
    ]


def test_it_names_the_line_of_each_bad_requirement():
    _, problems = parse_requirements("requests\nfoo==\n\n-e ./src\nbar @ https://x.invalid/b.whl")
    assert len(problems) == 3
    assert problems[0].startswith("Line 2: 'foo==' is not a PEP 508 requirement")
    assert problems[1].startswith("Line 4: pip options such as '-e' are not allowed")
    assert problems[2].startswith("Line 5: direct references (bar @ ...) are not allowed")


def test_it_refuses_index_options():
    _, problems = parse_requirements("--index-url https://evil.invalid/simple")
    assert problems and problems[0].startswith("Line 1: pip options such as '--index-url'")


def test_the_environment_spec_sorts_and_merges_connection_and_connector_lines():
    spec = environment_spec(["b>=1\na", "a\nc"])
    assert spec.requirements == ("a", "b>=1", "c")
    assert spec.key == environment_spec(["c\na\nb >= 1"]).key
    assert spec.key != environment_spec(["a\nb>=2\nc"]).key


def test_the_connection_form_refuses_a_bad_line_with_its_number(owner):
    form = ConnectionForm(
        data={"name": "Src", "description": "", "packages": "requests\nnot a requirement!"}
    )
    assert not form.is_valid()
    assert any(error.startswith("Line 2:") for error in form.errors["packages"])


def test_the_connector_form_refuses_a_bad_line_with_its_number():
    form = ConnectorCodeForm(data={"code": "", "interface": "pandas", "packages": "\n\nx ==>1"})
    assert not form.is_valid()
    assert form.errors["packages"][0].startswith("Line 3:")


def test_the_services_refuse_a_bad_line(owner, connection, connector):
    with pytest.raises(ValidationError, match="Line 1:"):
        services.connection_create(name="Bad", owner=owner, packages="-r other.txt")
    with pytest.raises(ValidationError, match="Line 2:"):
        services.connector_save_code(
            connector=connector,
            code=connector.code,
            packages="ok\nbad @ file:///etc/passwd",
            interface="pandas",
            parser="",
        )


def test_the_editor_save_answers_with_the_message(client, member, connector):
    client.force_login(member)
    response = client.post(
        f"/connectors/{connector.slug}/save/",
        {"code": connector.code, "interface": "pandas", "packages": "pandas\n-e ."},
    )
    assert response.status_code == 400
    messages = [error["message"] for error in response.json()["errors"]["packages"]]
    assert messages[0].startswith("Line 2: pip options such as '-e' are not allowed")
    connector.refresh_from_db()
    assert connector.packages == ""


def test_the_connection_edit_page_shows_the_message(client, owner, connection):
    client.force_login(owner)
    response = client.post(
        f"/connections/{connection.slug}/edit/",
        {"name": connection.name, "description": "", "packages": "ok\nfoo ==", "library_code": ""},
    )
    assert response.status_code == 200
    assert "Line 2: &#x27;foo ==&#x27; is not a PEP 508 requirement" in response.content.decode()
