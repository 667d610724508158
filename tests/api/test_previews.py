from __future__ import annotations

import pytest

from runs.models import Run
from tests.factories import TRIVIAL_CODE

PREVIEW_KEYS = {"ok", "action", "result", "logs", "error", "duration_ms", "isolation"}


def url(connector, action: str) -> str:
    return f"/api/v1/connectors/{connector.slug}/previews/{action}"


def post(client, connector, action: str, body: dict | None = None):
    """POST a preview: JSON, or no body at all (the saved code)."""
    return client.post(url(connector, action), body, content_type="application/json")


def test_it_reads_unsaved_code_like_the_preview_command(member_api, member, connector):
    code = TRIVIAL_CODE.replace("[1, 2, 3]", "[41, 42]")
    response = member_api.post(
        url(connector, "read"),
        {"code": code, "object": {"name": "only", "fingerprint": "v1"}, "limit": 10},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == PREVIEW_KEYS
    assert body["ok"] is True and body["action"] == "read"
    assert body["result"]["rows"] == [[41], [42]]
    run = Run.objects.get(pk=int(response["X-Run-Id"]))
    assert run.user == member and run.kind == "read"
    # The same object as `manage.py preview --json`.
    assert body == {**run.preview_json(), "duration_ms": body["duration_ms"]}


def test_it_lists_the_saved_code_without_a_body(member_api, connector):
    response = post(member_api, connector, "list")
    assert response.status_code == 200, response.content
    names = [o["name"] for o in response.json()["result"]["objects"]]
    assert names == ["only"]


def test_it_answers_429_when_too_many_previews_run(member_api, connector, settings):
    settings.SANDBOX_MAX_PER_USER = 0
    response = post(member_api, connector, "context")
    assert response.status_code == 429
    body = response.json()
    assert body["ok"] is False and body["error"]["type"] == "TooManyRuns"


@pytest.mark.parametrize(
    "body",
    [{"limit": 0}, {"interface": "cobol"}, {"parser": "xml"}, {"object": "a.csv"}],
)
def test_it_refuses_bad_parameters(member_api, connector, body):
    response = member_api.post(url(connector, "read"), body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.json()["type"] in ("invalid", "invalid_request")
    assert not Run.objects.exists()


def test_it_refuses_an_unknown_action(member_api, connector):
    assert post(member_api, connector, "explode").status_code == 422


def test_a_viewer_may_not_preview(viewer_api, connector):
    response = post(viewer_api, connector, "context")
    assert response.status_code == 403
    assert not Run.objects.exists()


def test_a_stranger_gets_404(stranger_api, connector):
    assert post(stranger_api, connector, "context").status_code == 404
    assert not Run.objects.exists()
