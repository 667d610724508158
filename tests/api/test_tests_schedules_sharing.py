"""The API's connector tests, schedules and sharing, and its JSON 404 for unknown paths."""

from __future__ import annotations

from django.contrib.auth.models import Group

from connections.services import connector_save_code
from runs.models import Run, RunKind, Schedule
from tests.factories import TRIVIAL_CODE

TESTS = (
    TRIVIAL_CODE
    + """

def test_rows(context):
    assert len(read_pandas_dataframe(context, {"name": "only"})) == 3


def test_listing(objects):
    print("listed", len(objects))
    assert [o["name"] for o in objects] == ["other"]
"""
)


def json_post(client, url: str, body: dict | None = None, method: str = "post"):
    return getattr(client, method)(url, body, content_type="application/json")


def test_it_runs_a_connectors_tests_like_test_connector(member_api, member, connector):
    connector_save_code(
        connector=connector, code=TESTS, packages="", interface="pandas", parser="", author=member
    )
    response = json_post(member_api, f"/api/v1/connectors/{connector.slug}/tests")
    assert response.status_code == 200, response.content
    body = response.json()
    run = Run.objects.get(pk=int(response["X-Run-Id"]))
    assert run.kind == RunKind.TEST and run.user == member
    assert body["run"] == run.pk and body["ok"] is False
    assert (body["total"], body["passed"], body["failed"]) == (2, 1, 1)
    outcomes = {test["name"]: test for test in body["tests"]}
    assert outcomes["test_rows"]["outcome"] == "passed"
    failed = outcomes["test_listing"]
    assert failed["outcome"] == "failed" and failed["logs"] == "listed 1\n"
    assert (failed["left"], failed["right"]) == ("['only']", "['other']")
    # The same object as `manage.py test_connector --json`.
    assert body == {**run.tests_json(), "tests": body["tests"]}


def test_a_viewer_may_not_run_tests_and_a_stranger_sees_nothing(
    viewer_api, stranger_api, connector
):
    url = f"/api/v1/connectors/{connector.slug}/tests"
    assert json_post(viewer_api, url).status_code == 403
    response = json_post(stranger_api, url)
    assert response.status_code == 404 and response.json()["type"] == "not_found"
    assert not Run.objects.filter(kind=RunKind.TEST).exists()


def test_it_sets_reads_lists_and_turns_off_a_schedule(member_api, viewer_api, connector):
    url = f"/api/v1/connectors/{connector.slug}/schedule"
    assert member_api.get(url).status_code == 404  # none yet
    response = json_post(
        member_api, url, {"cron": "0 6 * * 1-5", "timezone": "Europe/Paris"}, method="put"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["slug"] == connector.slug and body["cron"] == "0 6 * * 1-5"
    assert body["timezone"] == "Europe/Paris" and body["enabled"] is True
    assert body["next_run"] is not None
    assert viewer_api.get(url).json() == body  # a viewer sees it
    assert [s["slug"] for s in viewer_api.get("/api/v1/schedules").json()] == [connector.slug]
    # ... and may not change it.
    assert json_post(viewer_api, url, {"every": "15m"}, method="put").status_code == 403
    response = json_post(member_api, url, {"every": "15m"}, method="put")
    assert response.json()["interval_s"] == 900 and response.json()["cron"] is None
    response = member_api.delete(url)
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert Schedule.objects.get(connector=connector).next_run is None


def test_it_refuses_a_bad_schedule_with_the_reason(member_api, connector):
    url = f"/api/v1/connectors/{connector.slug}/schedule"
    for body, words in (
        ({"cron": "every morning"}, "Bad cron expression"),
        ({"every": "0m"}, "Bad interval"),
        ({"every": "1h", "timezone": "Mars/Olympus"}, "Unknown timezone"),
        ({"cron": "0 6 * * *", "every": "1h"}, "either a cron expression or an interval"),
    ):
        response = json_post(member_api, url, body, method="put")
        assert response.status_code == 400, body
        assert response.json()["type"] == "invalid" and words in response.json()["message"]
    assert not Schedule.objects.exists()


def test_a_stranger_sees_no_schedule(stranger_api, member_api, connector):
    url = f"/api/v1/connectors/{connector.slug}/schedule"
    json_post(member_api, url, {"every": "1h"}, method="put")
    assert stranger_api.get(url).status_code == 404
    assert stranger_api.get("/api/v1/schedules").json() == []


def test_the_owner_shares_a_connection_by_group_names(owner_api, connection, team):
    analysts = Group.objects.create(name="analysts")
    url = f"/api/v1/connections/{connection.slug}/sharing"
    assert owner_api.get(url).json() == {"use": [team.name], "view": []}
    response = json_post(owner_api, url, {"view": ["analysts"]}, method="put")
    assert response.status_code == 200, response.content
    assert response.json() == {"use": [team.name], "view": ["analysts"]}  # use kept
    assert list(connection.viewers.all()) == [analysts]
    response = json_post(owner_api, url, {"use": []}, method="put")
    assert response.json() == {"use": [], "view": ["analysts"]}


def test_sharing_names_unknown_groups_and_is_the_owners(
    owner_api, member_api, viewer_api, stranger_api, connection, team
):
    url = f"/api/v1/connections/{connection.slug}/sharing"
    response = json_post(owner_api, url, {"use": ["ghosts", team.name]}, method="put")
    assert response.status_code == 400 and response.json()["message"] == "No such group: ghosts."
    # A member who may use the connection sees its sharing but may not change it.
    assert member_api.get(url).status_code == 200
    assert json_post(member_api, url, {"view": []}, method="put").status_code == 403
    assert json_post(viewer_api, url, {"use": []}, method="put").status_code == 403
    assert stranger_api.get(url).status_code == 404
    assert list(connection.shared_with.all()) == [team]


def test_unknown_api_paths_answer_json_404(owner_api, client):
    for api_client in (owner_api, client):  # with a token, and anonymous
        response = api_client.get("/api/v1/no/such/thing")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {
            "type": "not_found",
            "message": "No API endpoint at /api/v1/no/such/thing; see /api/v1/docs.",
        }
