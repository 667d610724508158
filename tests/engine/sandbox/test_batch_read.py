"""Batch reads: one sandboxed child reads many leaves, each with its own outcome and table."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator

import pyarrow as pa
import pytest

from connector_engine.child.actions import execute
from connector_engine.protocol import Limits, SandboxRequest, SandboxResult
from connector_engine.sandbox import Sandbox, run_action

READER = """
import os
import pandas as pd

CALLS = []

def context(credentials):
    CALLS.append("context")
    return {"token": credentials}

def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "v1"}

def read_pandas_dataframe(context, metadata):
    name = metadata["name"]
    print("reading", name, "with", context["token"])
    if name == "bad":
        raise ValueError("cannot read " + name)
    if name == "exit":
        os._exit(3)
    if name == "oom":
        raise MemoryError()
    if name == "wide":
        return pd.DataFrame({"x": [1.5], "y": ["why"], "z": [True]})
    if name == "secret":
        return pd.DataFrame({"value": ["leaked " + context["token"]]})
    return pd.DataFrame({"name": [name, name], "calls": [len(CALLS), len(CALLS)]})
"""


RAISE_LINE = 1 + textwrap.dedent(READER).splitlines().index(
    '        raise ValueError("cannot read " + name)'
)


def leaves(*names: str) -> list[dict]:
    return [{"name": name, "fingerprint": "v1"} for name in names]


def batch_request(*names: str, **kwargs) -> SandboxRequest:
    return SandboxRequest(
        action="read",
        code=textwrap.dedent(READER),
        objects=leaves(*names),
        full_table=True,
        limits=Limits(timeout_s=10, memory_mb=512),
        **kwargs,
    )


def tables_of(result: SandboxResult) -> list[pa.Table | None]:
    pairs = result.batch()
    assert pairs is not None, result.error
    return [pa.ipc.open_stream(io.BytesIO(data)).read_all() if data else None for _, data in pairs]


@pytest.fixture(scope="module")
def sandbox(hidden_dir) -> Iterator[Sandbox]:
    box = Sandbox(hidden_paths=[hidden_dir])
    yield box
    box.stop()


def test_it_reads_each_leaf_with_one_context_in_process() -> None:
    outcome = execute(batch_request("a", "bad", "c"))
    assert outcome.ok and outcome.table is None
    items = outcome.result["batch"]
    assert [item["ok"] for item in items] == [True, False, True]
    assert items[1]["error"]["type"] == "ValueError"
    assert items[1]["error"]["message"] == "cannot read bad"
    assert items[1]["error"]["function"] == "read_pandas_dataframe"
    assert items[1]["error"]["line"] == RAISE_LINE
    assert items[0]["result"]["row_count"] == 2 and items[0]["result"]["object"]["name"] == "a"
    assert outcome.tables[1] is None
    first, _, last = outcome.tables
    # context() ran once for the whole batch
    assert first.column("calls").to_pylist() == last.column("calls").to_pylist() == [1, 1]


def test_a_failing_leaf_fails_alone_in_the_sandbox(sandbox: Sandbox) -> None:
    result = run_action(batch_request("a", "bad", "c"), sandbox=sandbox)
    assert result.ok, result.error
    items = [item for item, _ in result.batch()]
    assert [item["ok"] for item in items] == [True, False, True]
    assert items[1]["error"]["message"] == "cannot read bad"
    assert items[1]["error"]["line"] == RAISE_LINE
    assert items[1]["table_bytes"] == 0
    first, missing, last = tables_of(result)
    assert first.column("name").to_pylist() == ["a", "a"]
    assert missing is None
    assert last.column("name").to_pylist() == ["c", "c"]
    assert "reading a" in result.logs and "reading c" in result.logs


def test_running_out_of_memory_is_reported_per_item(sandbox: Sandbox) -> None:
    result = run_action(batch_request("a", "oom"), sandbox=sandbox)
    items = [item for item, _ in result.batch()]
    assert items[0]["ok"] and not items[1]["ok"]
    assert items[1]["error"]["type"] == "MemoryLimit"
    assert "memory limit of 512 MB" in items[1]["error"]["message"]


def test_each_leaf_keeps_its_own_schema(sandbox: Sandbox) -> None:
    result = run_action(batch_request("a", "wide", "b"), sandbox=sandbox)
    first, wide, last = tables_of(result)
    assert first.column_names == last.column_names == ["name", "calls"]
    assert wide.column_names == ["x", "y", "z"]
    assert [wide.schema.field(name).type for name in ("x", "z")] == [pa.float64(), pa.bool_()]
    assert wide.to_pylist() == [{"x": 1.5, "y": "why", "z": True}]


def test_secrets_are_masked_in_every_table_log_and_item(sandbox: Sandbox) -> None:
    secret = "tok-BATCH-SECRET-77"
    result = run_action(
        batch_request("secret", "a", "secret", "bad", credentials=secret), sandbox=sandbox
    )
    assert result.ok, result.error
    first, plain, last, _ = tables_of(result)
    assert first.column("value").to_pylist() == last.column("value").to_pylist() == ["leaked ****"]
    assert plain.column("name").to_pylist() == ["a", "a"]
    assert secret.encode() not in result.table
    assert secret not in result.logs and "with ****" in result.logs
    assert secret not in repr(result.to_json())


def test_a_crash_on_one_leaf_fails_the_whole_batch(sandbox: Sandbox) -> None:
    result = run_action(batch_request("a", "exit", "c"), sandbox=sandbox)
    assert not result.ok
    assert result.error["type"] == "ProcessExit"
    assert result.batch() is None and not result.table
    assert "reading a" in result.logs


def test_a_contract_error_fails_the_batch_before_any_read(sandbox: Sandbox) -> None:
    request = batch_request("a", "b")
    broken = SandboxRequest(**{**request.__dict__, "code": "def list_objects(c, m):\n  pass\n"})
    result = run_action(broken, sandbox=sandbox)
    assert not result.ok and result.error["type"] == "ContractError"
    assert result.batch() is None


@pytest.mark.parametrize(
    "changes",
    [{"full_table": False}, {"action": "schema"}, {"objects": {"name": "a"}}],
)
def test_a_batch_is_only_a_list_of_leaves_read_whole(changes) -> None:
    request = batch_request("a")
    outcome = execute(SandboxRequest(**{**request.__dict__, **changes}))
    assert not outcome.ok and outcome.error["type"] == "InvalidRequest"


def test_a_prefix_in_a_batch_fails_only_its_item() -> None:
    request = batch_request("a")
    objects = [{"name": "folder", "is_prefix": True}, *leaves("b")]
    outcome = execute(SandboxRequest(**{**request.__dict__, "objects": objects}))
    items = outcome.result["batch"]
    assert [item["ok"] for item in items] == [False, True]
    assert items[0]["error"]["type"] == "InvalidRequest"


def test_the_request_round_trips_with_its_objects() -> None:
    request = batch_request("a", "b")
    assert SandboxRequest.from_dict(request.to_dict()) == request
