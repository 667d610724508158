"""A preview's limits from the editor: rows, objects and timeout, within the server's bounds."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import Run, RunStatus
from tests.factories import make_connector

pytestmark = pytest.mark.django_db

FIVE_OBJECTS = """
import pandas as pd


def list_objects(context, metadata):
    for number in range(5):
        yield {"name": f"part-{number}", "fingerprint": str(number)}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": range(10)})
"""

SLOW_CONTEXT = """
import time


def context(credentials):
    time.sleep(30)


def list_objects(context, metadata):
    yield {"name": "one", "fingerprint": "1"}
"""


def preview(client, connector, action, **fields):
    data = {"code": connector.code, "interface": "pandas", "parser": "", "packages": ""}
    return client.post(reverse("runs:preview", args=[connector.slug, action]), data | fields)


def test_a_small_object_limit_flags_limit_reached(client, owner, connection):
    connector = make_connector(connection=connection, name="Five", code=FIVE_OBJECTS)
    client.force_login(owner)
    page = preview(client, connector, "list", object_limit=2).content.decode()
    assert "limit reached" in page
    run = Run.objects.get()
    assert run.result["truncated"] is True
    assert [item["name"] for item in run.result["objects"]] == ["part-0", "part-1"]
    assert run.parameters["max_objects"] == 2


def test_the_row_limit_still_applies(client, owner, connection):
    connector = make_connector(connection=connection, name="Rows", code=FIVE_OBJECTS)
    client.force_login(owner)
    page = preview(client, connector, "read", limit=3, object_limit=5, timeout=10).content.decode()
    assert "first 3 shown" in page
    assert Run.objects.get().parameters["row_limit"] == 3


def test_a_timeout_above_the_bound_is_refused_naming_it(client, owner, connection, settings):
    settings.PREVIEW_TIMEOUT_S = 20.0
    connector = make_connector(connection=connection, name="Bound", code=FIVE_OBJECTS)
    client.force_login(owner)
    response = preview(client, connector, "read", timeout=25)
    assert response.status_code == 400
    assert "At most 20 seconds" in response.content.decode()
    assert "PREVIEW_TIMEOUT_S" in response.content.decode()
    assert not Run.objects.exists()


def test_an_object_limit_above_the_bound_is_refused(client, owner, connection, settings):
    settings.PREVIEW_MAX_OBJECTS = 50
    connector = make_connector(connection=connection, name="Objects", code=FIVE_OBJECTS)
    client.force_login(owner)
    response = preview(client, connector, "list", object_limit=51)
    assert response.status_code == 400
    assert "At most 50 objects" in response.content.decode()
    assert preview(client, connector, "list", object_limit=0).status_code == 400
    assert preview(client, connector, "read", timeout=0).status_code == 400


def test_a_small_timeout_times_out(client, owner, connection):
    connector = make_connector(connection=connection, name="Slow", code=SLOW_CONTEXT)
    client.force_login(owner)
    response = preview(client, connector, "context", timeout=1)
    assert response.status_code == 200
    run = Run.objects.get()
    assert run.status == RunStatus.TIMED_OUT
    assert run.parameters["timeout_s"] == 1
    assert run.duration_ms < 15_000


def test_the_editor_shows_the_limits_and_their_bounds(client, owner, connection, settings):
    settings.PREVIEW_MAX_OBJECTS = 500
    settings.PREVIEW_TIMEOUT_S = 12.5
    connector = make_connector(connection=connection, name="Editor", code=FIVE_OBJECTS)
    client.force_login(owner)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'name="object_limit" id="id_object_limit" value="500" min="1" max="500"' in page
    assert 'name="timeout" id="id_timeout" value="12.5" min="0.1" max="12.5"' in page
    assert 'id="id_limit" value="100" min="1" max="10000"' in page
