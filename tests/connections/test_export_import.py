"""manage.py export_connector and import_connector: one .py file, a header and the code."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connections import export_format
from connections.models import Connector
from tests.factories import TRIVIAL_CODE, make_connector

pytestmark = pytest.mark.django_db

BYTES_CODE = """def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "1"}


def read_bytes(context, metadata):
    yield "x;y\\n1;2\\n"
"""


def export(slug: str, path) -> str:
    call_command("export_connector", slug, "--out", str(path))
    return path.read_text()


@pytest.fixture
def csv_connector(connection):
    return make_connector(
        connection=connection,
        name="Sales CSV",
        code=BYTES_CODE,
        interface="bytes",
        parser="csv",
        parser_options={"delimiter": ";"},
        packages="requests>=2\npyyaml; python_version >= '3.10'",
    )


def test_it_exports_a_readable_header_then_the_code(csv_connector, tmp_path):
    text = export(csv_connector.slug, tmp_path / "out.py")
    header, code = text.split(export_format.END_MARKER + "\n")
    assert header.splitlines() == [
        export_format.START_MARKER,
        "# name: Sales CSV",
        "# slug: sales-csv",
        "# interface: bytes",
        "# parser: csv",
        '# parser_options: {"delimiter": ";"}',
        "# package: requests>=2",
        "# package: pyyaml; python_version >= '3.10'",
    ]
    assert code == BYTES_CODE


def test_it_exports_to_stdout(connector, capsys):
    call_command("export_connector", connector.slug)
    assert capsys.readouterr().out.endswith(connector.code)


def test_export_import_export_gives_the_same_file(csv_connector, connection, tmp_path):
    first = export(csv_connector.slug, tmp_path / "first.py")
    call_command(
        "import_connector",
        str(tmp_path / "first.py"),
        "--connection",
        connection.slug,
        "--slug",
        "copy",
    )
    copy = Connector.objects.get(slug="copy")
    assert (copy.parser_options, copy.interface, copy.parser) == (
        {"delimiter": ";"},
        "bytes",
        "csv",
    )
    assert copy.versions.count() == 1
    second = export("copy", tmp_path / "second.py")
    assert second.replace("# slug: copy", "# slug: sales-csv") == first


def test_it_imports_into_an_existing_slug_as_a_new_version(connector, connection, tmp_path, capsys):
    path = tmp_path / "c.py"
    export(connector.slug, path)
    path.write_text(path.read_text() + "\n# changed\n")
    call_command("import_connector", str(path), "--connection", connection.slug)
    connector.refresh_from_db()
    assert connector.versions.count() == 2
    assert connector.code == TRIVIAL_CODE + "\n# changed\n"
    assert "version 2" in capsys.readouterr().out
    call_command("import_connector", str(path), "--connection", connection.slug)
    assert connector.versions.count() == 2  # the same code again: no new version


def test_a_malformed_header_names_the_line(connection, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(
        f"{export_format.START_MARKER}\n# name: X\n# interface: pandas\nparser csv\n"
        f"{export_format.END_MARKER}\n{TRIVIAL_CODE}"
    )
    with pytest.raises(CommandError, match="line 4") as raised:
        call_command("import_connector", str(path), "--connection", connection.slug)
    assert raised.value.returncode == 2
    assert not Connector.objects.filter(name="X").exists()


@pytest.mark.parametrize(
    ("header", "line", "words"),
    [
        ("# name: X\n# colour: red\n", 3, "unknown key 'colour'"),
        ("# name: X\n# interface: pandas\n# parser_options: {nope\n", 4, "not valid JSON"),
        ("# name: X\n# name: Y\n", 3, "given twice"),
        ("# interface: pandas\n", 3, "without 'name'"),
    ],
)
def test_parse_names_the_line_at_fault(header, line, words):
    text = f"{export_format.START_MARKER}\n{header}{export_format.END_MARKER}\ncode\n"
    with pytest.raises(export_format.ExportFormatError) as raised:
        export_format.parse(text)
    assert raised.value.line == line and words in str(raised.value)


def test_parse_refuses_a_file_without_the_markers():
    with pytest.raises(export_format.ExportFormatError, match="line 1"):
        export_format.parse(TRIVIAL_CODE)
    with pytest.raises(export_format.ExportFormatError, match="never ends"):
        export_format.parse(f"{export_format.START_MARKER}\n# name: X")


def test_it_refuses_a_slug_of_another_connection(connector, owner, tmp_path):
    from tests.factories import make_connection

    other = make_connection(owner=owner, name="Other")
    path = tmp_path / "c.py"
    export(connector.slug, path)
    with pytest.raises(CommandError, match="belongs to the connection"):
        call_command("import_connector", str(path), "--connection", other.slug)


def test_an_invalid_connector_is_a_clear_error(connection, tmp_path):
    path = tmp_path / "c.py"
    path.write_text(
        f"{export_format.START_MARKER}\n# name: X\n# interface: bytes\n"
        f"{export_format.END_MARKER}\n{BYTES_CODE}"
    )
    with pytest.raises(CommandError, match="parser") as raised:
        call_command("import_connector", str(path), "--connection", connection.slug)
    assert raised.value.returncode == 2


def test_export_of_an_unknown_slug_is_a_usage_error():
    with pytest.raises(CommandError) as raised:
        call_command("export_connector", "nope")
    assert raised.value.returncode == 2
