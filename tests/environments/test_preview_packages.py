"""Previews use the packages in the editor, saved or not, and `preview --packages`: real pip
(offline), real sandbox workers."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from environments.models import Environment, EnvironmentStatus
from environments.tasks import environment_build
from runs.management.commands.preview import split_requirements
from runs.models import Run, RunStatus
from runs.services import preview_run
from tests.environments.helpers import IMPORTING_CODE, upload_wheel
from tests.factories import TRIVIAL_CODE, make_connector

pytestmark = pytest.mark.django_db


def editor_preview(client, connector, packages: str):
    data = {"code": IMPORTING_CODE, "interface": "pandas", "packages": packages, "limit": 10}
    return client.post(reverse("runs:preview", args=[connector.slug, "read"]), data)


def test_the_editor_previews_with_its_unsaved_packages(connection, client, member):
    upload_wheel(connection)  # tinypkg 0.1: 0.2 cannot be installed
    connector = make_connector(
        connection=connection, name="Tiny", code=IMPORTING_CODE, packages="tinypkg==0.2"
    )
    client.force_login(member)

    # The environment of the editor's packages is built in the background, as a saved one is.
    building = editor_preview(client, connector, "tinypkg==0.1")
    run = Run.objects.latest("pk")
    assert run.error_type == "EnvironmentBuilding"
    assert "being built in the background" in building.content.decode()
    (queued,) = DBTaskResult.objects.filter(task_path="environments.tasks.environment_build")
    kwargs = queued.args_kwargs["kwargs"]
    assert kwargs == {"connector_id": connector.pk, "packages": "tinypkg==0.1"}
    assert environment_build.call(**kwargs) == "ok"  # as the worker does

    editor_preview(client, connector, "tinypkg==0.1")
    run = Run.objects.latest("pk")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["rows"][0][0] == "tinypkg 0.1"
    assert run.parameters["unsaved_packages"] is True
    environment = Environment.objects.get(key=run.parameters["environment"])
    assert environment.requirements == ["tinypkg==0.1"]
    assert environment.status == EnvironmentStatus.READY

    # The saved packages are another environment: the editor's did not replace them.
    connector.refresh_from_db()
    assert connector.packages == "tinypkg==0.2"
    saved = preview_run(connector=connector, action="read")
    assert saved.status == RunStatus.FAILED and saved.error_type == "EnvironmentError"
    assert saved.parameters["environment"] != environment.key


def run_preview(*args: str) -> tuple[int, str, str]:
    """Call `manage.py preview`; return its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("preview", *args, stdout=out, stderr=err)
        status = 0
    except SystemExit as exit:
        status = exit.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def connector_file(tmp_path):
    path = tmp_path / "connector.py"
    path.write_text(TRIVIAL_CODE)
    return path


def test_preview_file_takes_packages_and_waits_for_their_build(connector_file):
    args = ("--file", str(connector_file), "--action", "read", "--json")
    status, out, err = run_preview(*args, "--packages", "pandas>=1; pyarrow")
    assert status == 0, out + err
    assert json.loads(out)["result"]["rows"] == [[1], [2], [3]]
    (environment,) = Environment.objects.all()
    assert environment.requirements == ["pandas>=1", "pyarrow"]
    assert environment.status == EnvironmentStatus.READY
    assert f"Building the package environment {environment.key[:12]}" in err
    assert f"The package environment {environment.key[:12]} ready after" in err

    # Built once: the next preview reuses it and says nothing on stderr.
    status, out, err = run_preview(*args, "--packages", "pyarrow\npandas>=1")
    assert status == 0 and err == ""


def test_preview_file_takes_a_packages_file(connector_file, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# what the connector needs\nnosuchpkg==1.0\n")
    status, out, err = run_preview(
        "--file", str(connector_file), "--action", "read", "--json",
        "--packages-file", str(requirements),
    )  # fmt: skip
    assert status == 1
    error = json.loads(out)["error"]
    assert error["type"] == "EnvironmentError"
    assert "No matching distribution found for nosuchpkg==1.0" in error["message"]
    assert "failed to build after" in err


def test_preview_of_a_saved_connector_takes_packages(connection, connector_file):
    upload_wheel(connection)
    connector = make_connector(connection=connection, name="Tiny", code=IMPORTING_CODE)
    status, out, _ = run_preview(
        connector.slug, "--action", "read", "--json", "--packages", "tinypkg==0.1"
    )
    assert status == 0, out
    assert json.loads(out)["result"]["rows"][0][0] == "tinypkg 0.1"
    assert Run.objects.get().parameters["unsaved_packages"] is True


def test_packages_split_at_semicolons_but_keep_markers():
    assert split_requirements("a>=1; b") == ["a>=1", "b"]
    assert split_requirements('a; python_version >= "3.8"; b\nc;') == [
        'a; python_version >= "3.8"',
        "b",
        "c",
    ]
