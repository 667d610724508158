from __future__ import annotations

from runs.models import Run, RunKind, RunStatus


def start(client, connector, body: dict | None = None):
    return client.post(
        f"/api/v1/connectors/{connector.slug}/ingests", body, content_type="application/json"
    )


def test_it_queues_an_ingest(member_api, member, connector):
    response = start(member_api, connector)
    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get(pk=body["id"])
    assert run.kind == RunKind.INGEST and run.status == RunStatus.QUEUED and run.user == member
    assert body["status"] == "queued" and body["dry_run"] is False
    assert body["progress"]["status"] == "queued"


def test_it_queues_a_dry_run_allowed_to_delete(member_api, connector):
    response = start(member_api, connector, {"dry_run": True, "allow_deletes": True})
    run = Run.objects.get(pk=response.json()["id"])
    assert run.dry_run and run.parameters == {"allow_deletes": True}


def test_it_answers_409_while_an_ingest_is_active(member_api, connector):
    first = start(member_api, connector).json()["id"]
    response = start(member_api, connector)
    assert response.status_code == 409
    assert response.json()["type"] == "conflict"
    assert str(first) in response.json()["message"]


def test_it_refuses_an_unknown_engine(member_api, connector):
    response = start(member_api, connector, {"engine": "warp"})
    assert response.status_code == 400
    assert "engine" in response.json()["message"]


def test_it_gets_an_ingest_and_its_progress(member_api, viewer_api, connector):
    run_id = start(member_api, connector).json()["id"]
    response = viewer_api.get(f"/api/v1/ingests/{run_id}")
    assert response.status_code == 200 and response.json()["id"] == run_id
    progress = viewer_api.get(f"/api/v1/ingests/{run_id}/progress").json()
    assert progress["run_id"] == run_id and progress["is_finished"] is False


def test_it_cancels_a_queued_ingest(member_api, connector):
    run_id = start(member_api, connector).json()["id"]
    response = member_api.post(f"/api/v1/ingests/{run_id}/cancel")
    assert response.status_code == 200
    assert response.json()["cancelled"] is True
    assert response.json()["run"]["status"] == RunStatus.CANCELLED
    again = member_api.post(f"/api/v1/ingests/{run_id}/cancel").json()
    assert again["cancelled"] is False


def test_a_viewer_may_not_start_or_cancel(viewer_api, member_api, connector):
    assert start(viewer_api, connector).status_code == 403
    run_id = start(member_api, connector).json()["id"]
    assert viewer_api.post(f"/api/v1/ingests/{run_id}/cancel").status_code == 403
    assert Run.objects.get(pk=run_id).status == RunStatus.QUEUED


def test_a_stranger_gets_404(stranger_api, member_api, connector):
    assert start(stranger_api, connector).status_code == 404
    run_id = start(member_api, connector).json()["id"]
    assert stranger_api.get(f"/api/v1/ingests/{run_id}").status_code == 404
    assert stranger_api.get(f"/api/v1/ingests/{run_id}/progress").status_code == 404
    assert stranger_api.post(f"/api/v1/ingests/{run_id}/cancel").status_code == 404
    assert Run.objects.get(pk=run_id).status == RunStatus.QUEUED


def test_a_preview_is_not_an_ingest(member_api, connector):
    run = Run.objects.create(connector=connector, kind=RunKind.CONTEXT, status=RunStatus.SUCCEEDED)
    assert member_api.get(f"/api/v1/ingests/{run.pk}").status_code == 404
