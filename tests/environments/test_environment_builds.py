"""Environments end to end: real pip (offline), real sandbox workers, the connection page."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from connections import services
from connections.models import Environment, EnvironmentStatus
from connector_engine.environments.store import EnvironmentStore
from connectors_site import engine_config
from runs.models import RunStatus
from runs.services import preview_run
from tests.environments.helpers import IMPORTING_CODE, upload_wheel
from tests.factories import make_connection, make_connector

pytestmark = pytest.mark.django_db


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The keys pip built, in order (the real build still runs)."""
    built: list[str] = []
    real_build = EnvironmentStore._build

    def counting_build(self, spec):
        built.append(spec.key)
        return real_build(self, spec)

    monkeypatch.setattr(EnvironmentStore, "_build", counting_build)
    return built


@pytest.fixture
def tiny_connector(connection):
    upload_wheel(connection)
    return make_connector(
        connection=connection, name="Tiny", code=IMPORTING_CODE, packages="tinypkg==0.1"
    )


def test_a_connector_imports_an_uploaded_wheel_in_preview(tiny_connector, builds, client, owner):
    run = preview_run(connector=tiny_connector, action="read")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.result["rows"][0][0] == "tinypkg 0.1"
    import pandas

    assert run.result["rows"][0][1] == pandas.__version__  # the base pandas stays
    key = run.parameters["environment"]
    assert builds == [key]
    environment = Environment.objects.get(key=key)
    assert environment.status == EnvironmentStatus.READY
    assert environment.packages == [["tinypkg", "0.1"]]
    assert environment.requirements == ["tinypkg==0.1"]
    assert environment.size_bytes > 0 and environment.built_at and environment.last_used_at
    assert "Successfully installed tinypkg-0.1" in environment.build_log

    again = preview_run(connector=tiny_connector, action="read")
    assert again.status == RunStatus.SUCCEEDED
    assert again.parameters["environment"] == key
    assert builds == [key]  # reused, not built again

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


def test_a_missing_package_fails_the_build_with_pips_message(
    connection, connector, builds, client, owner
):
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

    # A failed build is recorded and not retried on every run; it is never half-used.
    again = preview_run(connector=broken, action="read")
    assert again.status == RunStatus.FAILED and len(builds) == 1
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
    assert "The environment failed to build" in run.error_message
    assert "pandas" in run.error_message


def test_the_rebuild_button_builds_again(tiny_connector, builds, client, member):
    first = preview_run(connector=tiny_connector, action="read")
    key = first.parameters["environment"]
    client.force_login(member)
    response = client.post(
        f"/connections/{tiny_connector.connection.slug}/environments/{key}/rebuild/"
    )
    assert response.status_code == 302
    assert builds == [key, key]
    assert preview_run(connector=tiny_connector, action="read").status == RunStatus.SUCCEEDED
    assert builds == [key, key]


def test_a_stranger_cannot_rebuild(tiny_connector, builds, client, stranger):
    key = preview_run(connector=tiny_connector, action="list").parameters["environment"]
    client.force_login(stranger)
    url = f"/connections/{tiny_connector.connection.slug}/environments/{key}/rebuild/"
    assert client.post(url).status_code == 403
    assert builds == [key]


def test_unused_environments_are_pruned(tiny_connector, builds):
    key = preview_run(connector=tiny_connector, action="list").parameters["environment"]
    root = engine_config.environment_store().root
    assert (root / key).is_dir()
    call_command("prune_environments", "--older-than", "1", verbosity=0)
    assert (root / key).is_dir()  # used just now
    Environment.objects.filter(key=key).update(last_used_at=timezone.now() - timedelta(days=2))
    call_command("prune_environments", "--older-than", "1", verbosity=0)
    assert not (root / key).exists()
    assert not Environment.objects.filter(key=key).exists()
    assert key not in engine_config.sandboxes().running()
    # The next run builds it again.
    assert preview_run(connector=tiny_connector, action="read").status == RunStatus.SUCCEEDED
    assert builds == [key, key]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_previews_build_once(owner, builds):
    connection = services.connection_create(name="Concurrent", owner=owner)
    upload_wheel(connection)
    first = make_connector(connection=connection, name="A", code=IMPORTING_CODE, packages="tinypkg")
    second = make_connector(
        connection=connection, name="B", code=IMPORTING_CODE, packages="tinypkg"
    )
    runs = {}
    start = threading.Barrier(2)

    def preview(connector):
        try:
            start.wait()
            runs[connector.name] = preview_run(connector=connector, action="read")
        finally:
            db_connection.close()

    threads = [threading.Thread(target=preview, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {run.status for run in runs.values()} == {RunStatus.SUCCEEDED}
    keys = {run.parameters["environment"] for run in runs.values()}
    assert len(keys) == 1
    assert builds == list(keys)  # one pip run for both
    assert Environment.objects.get().status == EnvironmentStatus.READY
