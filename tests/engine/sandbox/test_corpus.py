"""Run every connector in tests/corpus/ through the real sandbox and check its header.

Each corpus file starts with comment lines the test reads (a key may repeat):
  # expect-action: read            (context, list, read or schema; default read)
  # expect-interface: pandas       # expect-parser: csv
  # expect-credentials: {...}      ({hidden_dir} is replaced by a directory the sandbox hides)
  # expect-limits: {"cpu_s": 1}    (overrides the small corpus limits)
  # expect-ok: true                (or an expected error instead:)
  # expect-error: Timeout          (the error type)
  # expect-message: longer than    (a substring of the error message)
  # expect-problem: duplicate      (a substring of the JSON result, e.g. a listing problem)
  # expect-in-logs: [output cut:   (a substring of the captured output)
  # expect-not-in-output: s3cr3t   (must appear nowhere: logs, result, error, table)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector_engine.protocol import Limits, SandboxRequest
from connector_engine.sandbox import Sandbox, run_action
from tests.engine.sandbox.test_sandbox import (
    SECRET_ENV_NAME,
    SECRET_ENV_VALUE,
    TRIVIAL,
    wait_for_no_leftovers,
)

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
CORPUS_LIMITS = {
    "timeout_s": 3.0,
    "cpu_s": 10,
    "memory_mb": 256,
    "max_processes": 32,
    "max_output_bytes": 100_000,
}
HEADER = re.compile(r"^#\s*expect-([a-z-]+):\s?(.*)$")


def read_header(path: Path) -> dict[str, list[str]]:
    """Return the expectations in a corpus file's leading comment block."""
    header: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = HEADER.match(line)
        if match:
            header.setdefault(match.group(1), []).append(match.group(2).rstrip())
    return header


def one(header: dict[str, list[str]], key: str, default: str | None = None) -> str | None:
    """Return the single value of a header key."""
    values = header.get(key)
    return values[-1] if values else default


@pytest.fixture(scope="module")
def corpus_sandbox(hidden_dir: str) -> Iterator[Sandbox]:
    """One warm sandbox for the whole corpus, started with a secret in our environment."""
    os.environ[SECRET_ENV_NAME] = SECRET_ENV_VALUE
    box = Sandbox(hidden_paths=[hidden_dir])
    yield box
    # After the whole corpus the worker still serves a good request, and nothing is left.
    result = run_action(SandboxRequest(action="read", code=TRIVIAL), sandbox=box)
    assert result.ok, result.error
    assert wait_for_no_leftovers() == []
    box.stop()


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.py")), ids=lambda path: path.stem)
def test_corpus_connector(path: Path, corpus_sandbox: Sandbox, hidden_dir: str) -> None:
    header = read_header(path)
    credentials = (one(header, "credentials") or "").replace("{hidden_dir}", hidden_dir)
    limits = {**CORPUS_LIMITS, **json.loads(one(header, "limits") or "{}")}
    request = SandboxRequest(
        action=one(header, "action", "read"),
        code=path.read_text(),
        interface=one(header, "interface", "pandas"),
        parser=one(header, "parser"),
        credentials=credentials,
        limits=Limits.from_dict(limits),
    )

    result = run_action(request, sandbox=corpus_sandbox)

    summary = json.dumps(result.to_json(), default=str)[:2000]
    expected_error = one(header, "error")
    if expected_error:
        assert not result.ok, summary
        assert result.error["type"] == expected_error, summary
    else:
        assert result.ok, summary
    for message in header.get("message", []):
        assert message in result.error["message"], summary
    for problem in header.get("problem", []):
        assert problem in json.dumps(result.result), summary
    for text in header.get("in-logs", []):
        assert text in result.logs, summary
    for secret in header.get("not-in-output", []):
        assert secret not in json.dumps(result.to_json()), summary
        assert secret.encode() not in (result.table or b""), summary
    assert wait_for_no_leftovers() == []
