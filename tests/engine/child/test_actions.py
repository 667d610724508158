"""execute(): request checks, the contract check, the context action, never raising; the corpus
in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connector_engine.child.actions import execute
from connector_engine.protocol import SandboxRequest
from tests.engine.helpers import CONNECTOR, LIBRARY, run


def test_context_action_lists_keys():
    outcome = run(
        "context",
        CONNECTOR,
        library_code=LIBRARY,
        credentials='{"token": "abc", "n": 3, "nested": {"x": [1, 2]}}',
    )
    assert outcome.ok
    assert outcome.result["items"] == [
        {"key": "token", "type": "str", "repr": "'abc'"},
        {"key": "n", "type": "int", "repr": "3"},
        {"key": "nested", "type": "dict", "repr": "{'x': [1, 2]}"},
    ]


def test_context_of_a_non_mapping_and_a_broken_repr():
    code = """
    class Client:
        def __repr__(self):
            raise RuntimeError("no repr")

    def context(credentials):
        return Client()

    def list_objects(context, metadata):
        yield {}

    def read_pandas_dataframe(context, metadata):
        pass
    """
    (item,) = run("context", code).result["items"]
    assert item["key"] is None
    assert item["type"] == "Client"
    assert item["repr"] == "<repr failed: RuntimeError: no repr>"


def test_contract_error_stops_before_running():
    code = """
    print("should not run")

    def read_pandas_dataframe(context, metadata):
        pass
    """
    outcome = run("list", code)
    assert outcome.error["type"] == "ContractError"
    assert "list_objects" in outcome.error["message"]
    assert outcome.error["line"] == 1
    assert outcome.error["problems"][0]["severity"] == "error"


def test_unknown_action_and_interface_are_invalid_requests():
    assert run("explode", CONNECTOR).error["type"] == "InvalidRequest"
    assert run("list", CONNECTOR, interface="excel").error["type"] == "InvalidRequest"


def test_execute_never_raises_even_on_a_broken_request():
    outcome = execute(SandboxRequest(action="list", code=None))  # type: ignore[arg-type]
    assert not outcome.ok
    assert outcome.error["type"]


def test_keyboard_interrupt_from_user_code_is_an_error():
    code = """
    def list_objects(context, metadata):
        raise KeyboardInterrupt

    def read_pandas_dataframe(context, metadata):
        pass
    """
    outcome = run("list", code)
    assert outcome.error["type"] == "KeyboardInterrupt"


CORPUS = Path(__file__).resolve().parents[2] / "corpus"
MINE = sorted(
    path
    for prefix in ("metadata_", "contract_", "reader_")
    for path in CORPUS.glob(f"{prefix}*.py")
)
HEADER = re.compile(r"^#\s*expect-([a-z-]+):\s?(.*)$")


def corpus_header(path: Path) -> dict[str, str]:
    header = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = HEADER.match(line)
        if match:
            header[match.group(1)] = match.group(2).rstrip()
    return header


@pytest.mark.parametrize("path", MINE, ids=lambda path: path.stem)
def test_corpus_in_process(path: Path):
    header = corpus_header(path)
    outcome = execute(
        SandboxRequest(
            action=header.get("action", "read"),
            code=path.read_text(),
            interface=header.get("interface", "pandas"),
            parser=header.get("parser"),
        )
    )
    summary = json.dumps({"ok": outcome.ok, "result": outcome.result, "error": outcome.error})
    if "error" in header:
        assert not outcome.ok, summary
        assert outcome.error["type"] == header["error"], summary
        assert header.get("message", "") in outcome.error["message"], summary
    else:
        assert outcome.ok, summary
    if "problem" in header:
        assert header["problem"] in json.dumps(outcome.result), summary
