"""manage.py test_connector: a connector's test_* functions in the sandbox, recorded as a run."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connections.services import connection_create, connector_save_code
from runs.models import Run, RunStatus
from tests.factories import TRIVIAL_CODE, make_connector

pytestmark = pytest.mark.django_db

SECRET = "tok-SECRET-7171"

TESTS = (
    TRIVIAL_CODE
    + """

def context(credentials):
    import json
    return json.loads(credentials)


def test_context_has_a_token(context, credentials):
    print("token is", context["token"])
    assert context["token"] in credentials


def test_listing(objects):
    assert [o["name"] for o in objects] == ["only"]
"""
)
FAILING = """

def test_reader_rows(context):
    rows = len(read_pandas_dataframe(context=context, metadata={"name": "only"}))
    assert rows == 4


def test_raises():
    raise RuntimeError("broken")
"""


@pytest.fixture
def tested(owner):
    connection = connection_create(
        name="Tested", owner=owner, credentials=json.dumps({"token": SECRET})
    )
    return make_connector(connection=connection, name="Tested", code=TESTS)


def run_tests(capsys, *args: str) -> tuple[int, str]:
    try:
        call_command("test_connector", *args)
    except SystemExit as exc:
        return exc.code, capsys.readouterr().out
    return 0, capsys.readouterr().out


def test_it_passes_with_fixtures_and_records_a_test_run(tested, capsys):
    status, out = run_tests(capsys, tested.slug, "--json")
    assert status == 0, out
    outcome = json.loads(out)
    assert outcome["ok"] is True
    assert {
        "ok",
        "tests",
        "total",
        "passed",
        "failed",
        "errors",
        "error",
        "duration_ms",
        "run",
    } <= set(outcome)
    assert [t["name"] for t in outcome["tests"]] == ["test_context_has_a_token", "test_listing"]
    for test in outcome["tests"]:
        assert {"name", "outcome", "message", "duration_ms", "logs"} <= set(test)
        assert test["outcome"] == "passed"
    # What a test prints is masked like every other output.
    assert outcome["tests"][0]["logs"].startswith("token is ")
    assert SECRET not in out
    run = Run.objects.get(pk=outcome["run"])
    assert run.kind == "test" and run.status == RunStatus.SUCCEEDED
    assert run.code_version == tested.latest_version


def test_failures_show_the_compared_values_and_exit_1(tested, capsys):
    connector_save_code(
        connector=tested, code=TESTS + FAILING, packages="", interface="pandas", parser=""
    )
    status, out = run_tests(capsys, tested.slug, "--json")
    assert status == 1
    outcome = json.loads(out)
    by_name = {t["name"]: t for t in outcome["tests"]}
    assert outcome["ok"] is False and (outcome["failed"], outcome["errors"]) == (1, 1)
    failed = by_name["test_reader_rows"]
    assert failed["outcome"] == "failed"
    assert (failed["left"], failed["right"]) == ("3", "4")
    assert failed["message"] == "assert 3 == 4\n where: rows == 4"
    assert by_name["test_raises"]["outcome"] == "error"
    assert by_name["test_raises"]["message"] == "RuntimeError: broken"
    run = Run.objects.get(pk=outcome["run"])
    assert run.kind == "test" and run.status == RunStatus.FAILED
    assert run.error_type == "TestsFailed"


def test_it_prints_for_people(tested, capsys):
    connector_save_code(
        connector=tested, code=TESTS + FAILING, packages="", interface="pandas", parser=""
    )
    status, out = run_tests(capsys, tested.slug)
    assert status == 1
    assert "PASS  test_listing" in out
    assert "FAIL  test_reader_rows" in out and "assert 3 == 4" in out
    assert "ERROR test_raises" in out and "RuntimeError: broken" in out
    assert "4 tests: 2 passed, 1 failed, 1 errors" in out


def test_an_unknown_slug_is_bad_usage():
    with pytest.raises(CommandError) as raised:
        call_command("test_connector", "nope")
    assert raised.value.returncode == 2


def test_previews_and_ingests_never_call_test_functions(connection, capsys, ingest_settings):
    code = TRIVIAL_CODE + '\n\ndef test_explodes():\n    raise SystemExit("called")\n'
    connector = make_connector(connection=connection, name="Quiet", code=code)
    for action in ("context", "list", "read", "schema"):
        call_command("preview", connector.slug, "--action", action, "--json")
        assert json.loads(capsys.readouterr().out)["ok"] is True
    call_command("ingest", connector.slug, "--wait")
    run = Run.objects.filter(connector=connector, kind="ingest").get()
    assert run.status == RunStatus.SUCCEEDED


def test_exit_statuses_of_the_process():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "test_connector", "--timeout", "0", "x"],
        cwd=root,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--timeout must be positive" in result.stderr
