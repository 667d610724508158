"""Pieces of the Spark support that need no server."""

from __future__ import annotations

from runs.spark import needs_spark

from connector_engine.masking import Masker, remote_secrets
from connector_engine.spark.server import LocalSparkServer

URL = "sc://localhost:41234/;token=abcDEF123"


def test_it_masks_the_token_of_a_spark_url():
    assert remote_secrets(URL) == ["abcDEF123"]
    assert remote_secrets(None) == [] and remote_secrets("sc://host:1") == []
    masker = Masker("", remote_secrets(URL))
    assert masker.text(f"cannot reach {URL}") == "cannot reach sc://localhost:41234/;token=****"


def test_it_asks_for_spark_only_when_the_request_uses_it():
    pandas_code = "def infer_schema(context):\n    pass\n"
    spark_schema = "def infer_schema(spark, metadata):\n    pass\n"
    assert needs_spark(action="read", interface="spark", code="")
    assert needs_spark(action="schema", interface="spark", code="")
    assert not needs_spark(action="list", interface="spark", code="")
    assert not needs_spark(action="context", interface="spark", code="")
    assert not needs_spark(action="read", interface="pandas", code=spark_schema)
    assert needs_spark(action="schema", interface="pandas", code=spark_schema)
    assert not needs_spark(action="schema", interface="pandas", code=pandas_code)
    assert not needs_spark(action="schema", interface="pandas", code="def (")


def test_it_restarts_a_server_over_its_memory_bound(tmp_path, monkeypatch):
    server = LocalSparkServer(tmp_path, max_memory_mb=100)
    events = []
    monkeypatch.setattr(server, "_healthy", lambda: True)
    monkeypatch.setattr(server, "_stop_locked", lambda: events.append("stop"))
    monkeypatch.setattr(server, "_start_locked", lambda: events.append("start"))
    server.port, server.token = 4321, "t0ken"
    monkeypatch.setattr(server, "memory_mb", lambda: 50.0)
    assert server.remote() == "sc://localhost:4321/;token=t0ken" and events == []
    monkeypatch.setattr(server, "memory_mb", lambda: 150.0)
    server.remote()
    assert events == ["stop", "start"]
