"""Package builds run user code for as long as pip takes: never in a web request. A preview that
needs an environment not built yet answers at once and queues the build for the worker, once."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from connectors_site import engine_config
from environments.models import Environment, EnvironmentStatus
from environments.tasks import environment_build
from runs.models import Run
from tests.environments.helpers import upload_wheel
from tests.factories import make_connector

pytestmark = pytest.mark.django_db

IMPORTING = """
import pandas as pd
import tinypkg


def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"value": [tinypkg.VALUE]})
"""


@pytest.fixture(autouse=True)
def offline_environments(settings, tmp_path):
    settings.ENVIRONMENTS_DIR = tmp_path / "environments"
    settings.ENVIRONMENT_PIP_ARGS = ["--isolated", "--no-index"]
    yield
    engine_config.sandboxes().stop()


def post_preview(client, connector):
    data = {"code": connector.code, "interface": "pandas", "packages": connector.packages}
    return client.post(reverse("runs:preview", args=[connector.slug, "read"]), data)


def test_a_preview_answers_at_once_and_the_worker_builds(client, owner, connection):
    upload_wheel(connection)
    connector = make_connector(
        connection=connection, name="Tiny", code=IMPORTING, packages="tinypkg==0.1"
    )
    client.force_login(owner)

    started = time.monotonic()
    first = post_preview(client, connector)
    post_preview(client, connector)  # a second preview queues no second build

    assert time.monotonic() - started < 5
    assert "being built in the background" in first.content.decode()
    assert Run.objects.filter(error_type="EnvironmentBuilding").count() == 2
    environment = Environment.objects.get()
    assert environment.status == EnvironmentStatus.BUILDING
    assert not (engine_config.environment_store().root / environment.key).exists()  # not built
    (queued,) = DBTaskResult.objects.filter(task_path="environments.tasks.environment_build")
    page = client.get(reverse("connection_detail", args=[connection.slug])).content.decode()
    assert 'hx-trigger="every 2s"' in page  # the section refreshes while it builds

    assert environment_build.call(**queued.args_kwargs["kwargs"]) == "ok"  # the worker's part

    done = post_preview(client, connector)
    assert done.status_code == 200 and "being built" not in done.content.decode()
    assert Run.objects.latest("pk").status == "succeeded"
    page = client.get(reverse("connection_detail", args=[connection.slug])).content.decode()
    assert 'hx-trigger="every 2s"' not in page
