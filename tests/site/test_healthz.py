"""/healthz: 200 when the database answers and a queue worker beat recently, 503 otherwise;
Spark reported, never failing it. No login, never cached. (Through gunicorn, with a real worker
and an unreachable database: tests/site/test_production_server.py.)"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from connectors_site import engine_config
from runs.models import WorkerHeartbeat
from runs.workers import worker_register

pytestmark = pytest.mark.django_db


def health(client):
    response = client.get("/healthz")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"] and "max-age=0" in response["Cache-Control"]
    return response.status_code, response.json()


def test_it_answers_503_without_a_worker_and_needs_no_login(client):
    status, body = health(client)

    assert status == 503
    assert body["status"] == "unavailable"
    assert set(body["checks"]) == {"database", "worker", "spark"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["duration_ms"] >= 0
    assert body["checks"]["worker"] == {"ok": False, "alive": 0, "last_beat_at": None}


def test_it_answers_200_while_a_worker_beats(client):
    worker_register(worker_id="worker-1")

    status, body = health(client)

    assert status == 200
    assert body["status"] == "ok"
    worker = body["checks"]["worker"]
    assert worker["ok"] is True and worker["alive"] == 1
    beat = WorkerHeartbeat.objects.get(worker_id="worker-1").beat_at
    assert worker["last_beat_at"] == beat.isoformat()


def test_a_worker_silent_for_too_long_is_not_alive(client, settings):
    heartbeat = worker_register(worker_id="worker-1")
    silent = timezone.now() - timedelta(seconds=settings.WORKER_STALE_AFTER_S + 5)
    WorkerHeartbeat.objects.filter(pk=heartbeat.pk).update(beat_at=silent)

    status, body = health(client)

    assert status == 503
    assert body["checks"]["worker"] == {
        "ok": False,
        "alive": 0,
        "last_beat_at": silent.isoformat(),
    }


def test_it_writes_nothing(client, django_assert_max_num_queries):
    worker_register(worker_id="worker-1")
    with django_assert_max_num_queries(8) as context:
        health(client)
    statements = [query["sql"].split()[0].upper() for query in context.captured_queries]
    assert statements.count("SELECT") == 3  # SELECT 1, then the workers' heartbeats
    assert not {"INSERT", "UPDATE", "DELETE", "CREATE", "DROP"} & set(statements)


def test_it_answers_only_get(client):
    assert client.post("/healthz").status_code == 405


def test_a_local_spark_server_not_started_is_reported_not_failed(
    client, settings, tmp_path, monkeypatch
):
    # A Spark folder of its own: the tests' shared Spark server may be up in the default one.
    settings.SPARK_DIR = tmp_path / "spark"
    monkeypatch.setattr(engine_config, "_spark_server", None)
    worker_register(worker_id="worker-1")

    status, body = health(client)

    assert status == 200
    spark = body["checks"]["spark"]
    assert spark["ok"] is True
    assert spark["kind"] == "local" and spark["state"] == "not started"


def test_a_remote_spark_is_probed_but_never_fails_the_site(client, settings):
    worker_register(worker_id="worker-1")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        settings.SPARK_REMOTE = f"sc://127.0.0.1:{port}/;token=SECRET-TOKEN"
        status, up = health(client)
    status_down, down = health(client)  # nothing listens there any more

    assert status == status_down == 200
    assert up["checks"]["spark"] == {"ok": True, "kind": "remote", "reachable": True}
    assert down["checks"]["spark"] == {"ok": True, "kind": "remote", "reachable": False}
    assert "SECRET-TOKEN" not in str(up) + str(down)
