"""Pieces of the Spark support that need no server."""

from __future__ import annotations

from connector_engine.contract import needs_spark
from connector_engine.masking import Masker, remote_secrets
from connector_engine.protocol import make_error
from connector_engine.spark.server import LocalSparkServer
from connector_engine.spark.source import CapturedText, timeout_error

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


def test_it_finds_infer_schema_spark_wherever_the_contract_check_does():
    # A definition inside a top-level try (an optional import guard) is still the module's.
    guarded = (
        "try:\n    import boto3\nexcept ImportError:\n    boto3 = None\nelse:\n"
        "    def infer_schema(spark, context):\n        return spark.range(1)\n"
    )
    assert needs_spark(action="schema", interface="pandas", code=guarded)
    assert needs_spark(
        action="schema", interface="bytes", code="if True:\n" + "    def infer_schema(spark): ...\n"
    )


class ServerWithoutProcesses(LocalSparkServer):
    """A server whose health and memory are given and whose starts and stops are recorded."""

    def __init__(self, directory, **options) -> None:
        super().__init__(directory, **options)
        self.events: list[str] = []
        self.memory = 0.0

    def _healthy(self) -> bool:
        return True

    def _stop_locked(self) -> None:
        self.events.append("stop")

    def _start_locked(self) -> None:
        self.events.append("start")

    def memory_mb(self) -> float:
        return self.memory


def test_it_restarts_a_server_over_its_memory_bound(tmp_path):
    server = ServerWithoutProcesses(tmp_path, max_memory_mb=100)
    server.port, server.token = 4321, "t0ken"
    server.memory = 50.0
    assert server.remote() == "sc://localhost:4321/;token=t0ken" and server.events == []
    server.memory = 150.0
    server.remote()
    assert server.events == ["stop", "start"]


def test_it_caps_what_a_spark_reader_prints_with_the_sandbox_marker():
    output = CapturedText(10)  # bytes, not characters
    print("héllo", "world", file=output)
    assert output.text() == "héllo wor\n[output cut: 3 bytes more not shown]"


def test_its_read_reports_have_the_one_error_shape():
    error = timeout_error(2.5)
    assert error.keys() == make_error("Timeout", "").keys()
    assert error["type"] == "Timeout" and "2.5 s" in error["message"]
