"""manage.py preview: the same engine from the command line, with JSON output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from runs.models import Run
from tests.factories import TRIVIAL_CODE

ROOT = Path(__file__).resolve().parents[2]


def preview(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "preview", *args],
        cwd=cwd,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def connector_file(tmp_path: Path) -> Path:
    path = tmp_path / "connector.py"
    path.write_text(TRIVIAL_CODE)
    return path


def test_it_prints_one_json_object_for_a_file(connector_file):
    result = preview("--file", str(connector_file), "--action", "read", "--json")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert set(outcome) == {"ok", "action", "result", "logs", "error", "duration_ms", "isolation"}
    assert outcome["ok"] is True
    assert outcome["result"]["rows"] == [[1], [2], [3]]
    assert outcome["result"]["row_count"] == 3 and outcome["result"]["truncated"] is False


def test_it_lists_in_the_documented_shape(connector_file):
    outcome = json.loads(
        preview("--file", str(connector_file), "--action", "list", "--json").stdout
    )
    # problems_omitted counts problems past the reporting cap (none here).
    assert outcome["result"].pop("problems_omitted") == 0
    # Each object also carries the dict list_objects yielded, to hand back to the reader.
    assert outcome["result"]["objects"][0].pop("metadata") == {
        "name": "only",
        "fingerprint": "v1",
        "is_prefix": False,
    }
    assert outcome["result"] == {
        "objects": [
            {"name": "only", "fingerprint": "v1", "is_prefix": False, "parent": None, "depth": 0}
        ],
        "leaf_count": 1,
        "truncated": False,
        "problems": [],
    }


def test_it_uses_credentials_and_library_files(tmp_path):
    (tmp_path / "creds.json").write_text('{"region": "eu-west-1", "token": "tok-123456"}')
    (tmp_path / "lib.py").write_text("def greeting():\n    return 'hello from library'\n")
    (tmp_path / "c.py").write_text(
        "import json\nimport library\n\n"
        "def context(credentials):\n"
        "    fields = json.loads(credentials)\n"
        "    return {'region': fields['region'], 'token': fields['token'], "
        "'hi': library.greeting()}\n\n" + TRIVIAL_CODE
    )
    result = preview(
        "--file", str(tmp_path / "c.py"), "--action", "context", "--json",
        "--credentials-file", str(tmp_path / "creds.json"),
        "--library-file", str(tmp_path / "lib.py"),
    )  # fmt: skip
    items = {i["key"]: i for i in json.loads(result.stdout)["result"]["items"]}
    assert items["hi"]["repr"] == "'hello from library'"
    # Only secret fields are masked (by their name here): configuration is shown as it is.
    assert items["region"]["repr"] == "'eu-west-1'"
    assert items["token"]["repr"] == "'****'"


def test_it_exits_1_when_the_users_code_fails(tmp_path):
    (tmp_path / "c.py").write_text(TRIVIAL_CODE.replace("def list_objects", "def list_objectz"))
    result = preview("--file", str(tmp_path / "c.py"), "--action", "list", "--json")
    assert result.returncode == 1
    assert "list_objects" in json.loads(result.stdout)["error"]["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--action", "list"], "either a connector SLUG or --file"),
        (["--file", "/nonexistent.py", "--action", "list"], "cannot read connector file"),
        (["--file", "x.py", "--action", "dance"], "invalid choice"),
        (["--file", "x.py", "--action", "read", "--object", "[1]"], "must be a JSON object"),
        (["--file", "x.py", "--action", "read", "--object", "{oops"], "not valid JSON"),
        (["--file", "x.py", "--action", "read", "--limit", "0"], "--limit must be positive"),
        (["--file", "x.py", "--action", "read", "--interface", "bytes"], "needs --parser"),
        (["--file", "x.py", "--action", "read", "--parser-options", "[]"], "a JSON object"),
        (["--file", "x.py", "--action", "read", "--packages-file", "/no/such"], "packages file"),
    ],
)
def test_it_exits_2_on_bad_usage(args, message):
    result = preview(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_it_prints_a_readable_summary_without_json(connector_file):
    result = preview("--file", str(connector_file), "--action", "read")
    assert result.returncode == 0
    assert (
        "read: ok" in result.stdout and "n (int64)" in result.stdout and "3 rows" in result.stdout
    )


@pytest.mark.django_db
def test_it_previews_a_saved_connector_and_records_the_run(connector, capsys):
    call_command("preview", connector.slug, "--action", "read", "--limit", "2", "--json")
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["ok"] is True
    assert outcome["result"]["rows"] == [[1], [2]] and outcome["result"]["truncated"] is True
    run = Run.objects.get(connector=connector)
    assert run.kind == "read" and run.status == "succeeded" and run.parameters["row_limit"] == 2


@pytest.mark.django_db
def test_it_exits_1_for_a_failing_saved_connector(connector, capsys):
    # The saved code defines read_pandas_dataframe, so the bytes interface has no reader.
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "preview", connector.slug, "--action", "read", "--interface", "bytes",
            "--parser", "csv", "--json",
        )  # fmt: skip
    assert exit_info.value.code == 1
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["error"]["type"] == "ContractError"
    assert "read_bytes" in outcome["error"]["message"]
    assert Run.objects.get(connector=connector).status == "failed"


def test_it_draws_prefix_names_as_given(tmp_path, capsys):
    path = tmp_path / "slashed.py"
    path.write_text(
        "def list_objects(context, metadata):\n"
        "    if not metadata:\n"
        "        yield {'name': 'flights/year=2013/', 'fingerprint': 'p', 'is_prefix': True}\n"
        "    else:\n"
        "        yield {'name': 'flights/year=2013/a.csv', 'fingerprint': 'a'}\n\n"
        "def read_pandas_dataframe(context, metadata):\n"
        "    return None\n"
    )
    call_command("preview", "--file", str(path), "--action", "list")
    out = capsys.readouterr().out
    assert "  + flights/year=2013/\n    flights/year=2013/a.csv  [a]" in out
    assert "2013//" not in out


def test_it_reads_with_parser_options(tmp_path, capsys):
    path = tmp_path / "semicolons.py"
    path.write_text(
        "def list_objects(context, metadata):\n"
        "    yield {'name': 'only', 'fingerprint': 'v1'}\n\n"
        "def read_bytes(context, metadata):\n"
        "    yield 'a;b\\n1;\\n'\n"
    )
    args = ["--file", str(path), "--action", "read", "--interface", "bytes", "--parser", "csv"]
    call_command("preview", *args, "--parser-options", '{"delimiter": ";"}', "--json")
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["result"]["rows"] == [[1, None]]
    with pytest.raises(SystemExit):
        call_command("preview", *args, "--parser-options", '{"delimiter": ""}', "--json")
    assert json.loads(capsys.readouterr().out)["error"]["type"] == "ConfigurationError"
