"""Environments end to end: real pip (offline), real sandbox workers, the connection page."""

from __future__ import annotations

import importlib.metadata
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult

from connections import services
from connectors_site import engine_config
from environments.models import Environment, EnvironmentStatus
from environments.selectors import connector_environment_spec
from environments.services import environment_ensure
from environments.tasks import environment_build
from runs.models import RunStatus
from runs.services import preview_run
from tests.environments.helpers import IMPORTING_CODE, upload_wheel
from tests.factories import make_connection, make_connector

pytestmark = pytest.mark.django_db


def built_at(key: str) -> float | None:
    """When pip last built `key` (ready or failed), as the store recorded it; None: never."""
    outcome = engine_config.environment_store().outcome(key)
    return outcome.built_at if outcome else None


@pytest.fixture
def tiny_connector(connection):
    upload_wheel(connection)
    return make_connector(
        connection=connection, name="Tiny", code=IMPORTING_CODE, packages="tinypkg==0.1"
    )


def test_a_connector_imports_an_uploaded_wheel_in_preview(tiny_connector, client, owner):
    run = preview_run(connector=tiny_connector, action="read")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["rows"][0][0] == "tinypkg 0.1"
    import pandas

    assert run.result["rows"][0][1] == pandas.__version__  # the base pandas stays
    key = run.parameters["environment"]
    first_build = built_at(key)
    assert first_build is not None
    environment = Environment.objects.get(key=key)
    assert environment.status == EnvironmentStatus.READY
    assert environment.packages == [["tinypkg", "0.1"]]
    assert environment.requirements == ["tinypkg==0.1"]
    assert environment.size_bytes > 0 and environment.built_at and environment.last_used_at
    assert "Successfully installed tinypkg-0.1" in environment.build_log

    again = preview_run(connector=tiny_connector, action="read")
    assert again.status == RunStatus.SUCCEEDED
    assert again.parameters["environment"] == key
    assert built_at(key) == first_build  # reused, not built again

    client.force_login(owner)
    page = client.get(f"/connections/{tiny_connector.connection.slug}/").content.decode()
    assert 'data-status="ready"' in page
    assert "<code>tinypkg 0.1</code>" in page
    assert "Build log" in page and "Successfully installed tinypkg-0.1" in page


def test_the_result_panel_names_the_environment(tiny_connector, client, owner):
    # The connection's files go into every connector's environment: "base" needs another one.
    plain = make_connector(connection=make_connection(owner=owner, name="Plain"), name="Plain")
    client.force_login(owner)
    response = client.post(
        reverse("runs:preview", args=[tiny_connector.slug, "read"]),
        {"code": IMPORTING_CODE, "interface": "pandas", "packages": "tinypkg==0.1"},
    )
    key = Environment.objects.get().key
    assert f"env {key[:12]}" in response.content.decode()
    response = client.post(
        reverse("runs:preview", args=[plain.slug, "read"]),
        {"code": plain.code, "interface": "pandas"},
    )
    assert "env base" in response.content.decode()


def test_a_missing_package_fails_the_build_with_pips_message(connection, connector, client, owner):
    broken = make_connector(
        connection=connection, name="Broken", code=IMPORTING_CODE, packages="nosuchpkg==1.0"
    )
    run = preview_run(connector=broken, action="read")
    assert run.status == RunStatus.FAILED
    assert run.error_type == "EnvironmentError"
    assert run.error_message.startswith("The environment failed to build: ERROR:")
    assert "No matching distribution found for nosuchpkg==1.0" in run.error_message
    environment = Environment.objects.get(key=run.parameters["environment"])
    assert environment.status == EnvironmentStatus.FAILED
    assert "No matching distribution found for nosuchpkg==1.0" in environment.error
    failed_at = built_at(environment.key)
    assert failed_at is not None

    # A failed build is recorded and not retried on every run; it is never half-used.
    again = preview_run(connector=broken, action="read")
    assert again.status == RunStatus.FAILED and built_at(environment.key) == failed_at
    assert not list(engine_config.environment_store().root.glob("*.building-*"))
    assert not (engine_config.environment_store().root / environment.key).exists()

    # Other connectors of the connection keep working.
    assert preview_run(connector=connector, action="read").status == RunStatus.SUCCEEDED

    client.force_login(owner)
    page = client.get(f"/connections/{connection.slug}/").content.decode()
    assert 'data-status="failed"' in page
    assert "No matching distribution found for nosuchpkg==1.0" in page


def test_a_requirement_that_conflicts_with_the_base_fails_instead_of_replacing_it(connection):
    connector = make_connector(
        connection=connection, name="Old pandas", code=IMPORTING_CODE, packages="pandas<2"
    )
    run = preview_run(connector=connector, action="list")
    assert run.status == RunStatus.FAILED
    assert run.error_message == (
        "The environment failed to build: The packages ask for pandas<2; "
        f"the app provides pandas {importlib.metadata.version('pandas')}."
    )


def test_a_dependency_that_conflicts_with_the_base_is_told_in_one_sentence(
    connection, client, owner
):
    upload_wheel(connection, "clashpkg", "1.0", requires=("pandas<2,>=1.5",))
    connector = make_connector(
        connection=connection, name="Clash", code=IMPORTING_CODE, packages="clashpkg==1.0"
    )
    run = preview_run(connector=connector, action="list")
    assert run.status == RunStatus.FAILED
    sentence = (
        "clashpkg 1.0 needs pandas<2,>=1.5; "
        f"the app provides pandas {importlib.metadata.version('pandas')}."
    )
    assert run.error_message == f"The environment failed to build: {sentence}"
    assert "ResolutionImpossible" in run.error_traceback  # pip's whole account stays in the log

    client.force_login(owner)
    page = client.get(f"/connections/{connection.slug}/").content.decode()
    assert escape(sentence) in page


def test_the_rebuild_button_queues_a_build_for_the_worker(tiny_connector, client, member):
    first = preview_run(connector=tiny_connector, action="read")
    key = first.parameters["environment"]
    first_build = built_at(key)
    client.force_login(member)
    response = client.post(
        f"/connections/{tiny_connector.connection.slug}/environments/{key}/rebuild/"
    )
    assert response.status_code == 302
    assert built_at(key) == first_build  # not in the web request
    (queued,) = DBTaskResult.objects.filter(task_path="environments.tasks.environment_build")
    assert queued.args_kwargs["kwargs"] == {"connector_id": tiny_connector.pk, "force": True}

    assert environment_build.call(**queued.args_kwargs["kwargs"]) == "ok"  # as the worker does
    rebuilt = built_at(key)
    assert rebuilt > first_build
    assert preview_run(connector=tiny_connector, action="read").status == RunStatus.SUCCEEDED
    assert built_at(key) == rebuilt


def test_a_stranger_cannot_rebuild(tiny_connector, client, stranger):
    key = preview_run(connector=tiny_connector, action="list").parameters["environment"]
    first_build = built_at(key)
    client.force_login(stranger)
    url = f"/connections/{tiny_connector.connection.slug}/environments/{key}/rebuild/"
    assert client.post(url).status_code == 403
    assert built_at(key) == first_build


def test_unused_environments_are_pruned(tiny_connector):
    key = preview_run(connector=tiny_connector, action="list").parameters["environment"]
    first_build = built_at(key)
    root = engine_config.environment_store().root
    assert (root / key).is_dir()
    call_command("prune_environments", "--older-than", "1", verbosity=0)
    assert (root / key).is_dir()  # used just now
    Environment.objects.filter(key=key).update(last_used_at=timezone.now() - timedelta(days=2))
    call_command("prune_environments", "--older-than", "1", verbosity=0)
    assert not (root / key).exists()
    assert not Environment.objects.filter(key=key).exists()
    assert key not in engine_config.sandboxes().running()
    assert built_at(key) is None
    # The next run builds it again.
    assert preview_run(connector=tiny_connector, action="read").status == RunStatus.SUCCEEDED
    assert built_at(key) > first_build


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_build_once(owner):
    connection = services.connection_create(name="Concurrent", owner=owner)
    upload_wheel(connection)
    first = make_connector(connection=connection, name="A", code=IMPORTING_CODE, packages="tinypkg")
    second = make_connector(
        connection=connection, name="B", code=IMPORTING_CODE, packages="tinypkg"
    )
    outcomes = {}
    start = threading.Barrier(2)

    def ensure(connector):
        try:
            start.wait()
            spec = connector_environment_spec(connector)
            outcomes[connector.name] = environment_ensure(spec=spec)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=ensure, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outcome.ok for outcome in outcomes.values())
    assert len({outcome.key for outcome in outcomes.values()}) == 1
    # One pip run for both: the other waited for the build lock and reused its result.
    assert sorted(outcome.built for outcome in outcomes.values()) == [False, True]
    assert Environment.objects.get().status == EnvironmentStatus.READY
    for connector in (first, second):
        assert preview_run(connector=connector, action="read").status == RunStatus.SUCCEEDED
