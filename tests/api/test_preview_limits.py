"""The API's preview limits: object_limit and timeout_s, within the server's bounds."""

from __future__ import annotations

import pytest

from runs.models import Run

pytestmark = pytest.mark.django_db

FIVE = """
def list_objects(context, metadata):
    for number in range(5):
        yield {"name": f"part-{number}", "fingerprint": str(number)}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"n": [1]})
"""


def post(client, connector, action: str, body: dict):
    url = f"/api/v1/connectors/{connector.slug}/previews/{action}"
    return client.post(url, body, content_type="application/json")


def test_an_object_limit_stops_the_listing(member_api, connector):
    response = post(member_api, connector, "list", {"code": FIVE, "object_limit": 2})
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert len(result["objects"]) == 2 and result["truncated"] is True
    run = Run.objects.get(pk=int(response["X-Run-Id"]))
    assert run.parameters["max_objects"] == 2


def test_limits_above_the_bounds_are_refused(member_api, connector, settings):
    settings.PREVIEW_TIMEOUT_S = 20.0
    settings.PREVIEW_MAX_OBJECTS = 50
    response = post(member_api, connector, "list", {"timeout_s": 21})
    assert response.status_code == 400
    assert "at most 20" in response.json()["message"]
    response = post(member_api, connector, "list", {"object_limit": 51})
    assert response.status_code == 400
    assert "at most 50" in response.json()["message"]
    assert not Run.objects.exists()
