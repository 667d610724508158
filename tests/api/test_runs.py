from __future__ import annotations

from runs.models import Run, RunKind, RunStatus
from tests.factories import make_connection, make_connector


def make_run(connector, kind=RunKind.CONTEXT, status=RunStatus.SUCCEEDED, **fields) -> Run:
    return Run.objects.create(connector=connector, kind=kind, status=status, **fields)


def test_it_lists_visible_runs_newest_first(member_api, owner, connector):
    first, second = make_run(connector), make_run(connector, kind=RunKind.READ)
    other = make_connector(connection=make_connection(owner=owner, name="Private"), name="P")
    make_run(other)  # the member does not see the private connection
    ids = [r["id"] for r in member_api.get("/api/v1/runs").json()]
    assert ids == [second.pk, first.pk]


def test_it_filters_runs(member_api, connector):
    make_run(connector)
    failed = make_run(connector, kind=RunKind.READ, status=RunStatus.FAILED)
    dry = make_run(connector, kind=RunKind.INGEST, status=RunStatus.QUEUED, dry_run=True)

    def ids(query: str) -> list[int]:
        return [r["id"] for r in member_api.get(f"/api/v1/runs?{query}").json()]

    assert ids("status=failed") == [failed.pk]
    assert ids("kind=ingest") == [dry.pk]
    assert ids("dry_run=true") == [dry.pk]
    assert ids(f"connector={connector.slug}&limit=1") == [dry.pk]
    assert ids("connector=other") == []
    assert len(ids("offset=1")) == 2


def test_it_gets_a_run_with_its_result(viewer_api, connector):
    run = make_run(connector, result={"items": []}, logs="hello")
    body = viewer_api.get(f"/api/v1/runs/{run.pk}").json()
    assert body["result"] == {"items": []} and body["logs"] == "hello"
    assert body["connector"] == connector.slug and body["progress"] is None


def test_a_stranger_sees_no_runs(stranger_api, connector):
    run = make_run(connector)
    assert stranger_api.get("/api/v1/runs").json() == []
    response = stranger_api.get(f"/api/v1/runs/{run.pk}")
    assert response.status_code == 404 and response.json()["type"] == "not_found"
