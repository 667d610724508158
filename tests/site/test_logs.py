"""Logs in one format (connectors_site.logs): time, level, logger, process and, while a run
executes, its id; LOG_FORMAT=json gives one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading

import pytest
from django.conf import settings

from connectors_site.logs import JsonFormatter, RunIdFilter, TextFormatter, run_logging
from runs import services as run_services
from runs.ingest import services
from runs.ingest.execution import IngestExecution, ingest_claim
from runs.models import RunStatus
from tests.factories import make_connector

LOG = """
import logging
logger = logging.getLogger("connectors.check")
logger.info("plain line")
try:
    raise ValueError("bad value")
except ValueError:
    logger.exception("it failed")
"""


def manage_shell(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATA_DIR": str(settings.DATA_DIR), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def captured():
    """A handler like the configured one (JSON lines), on the root logger for one test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RunIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def records(stream: io.StringIO, logger: str) -> list[dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == logger]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("ingest_settings")
def test_what_an_ingest_logs_carries_its_run_id_in_every_thread(connection, source, captured):
    source.set("a", "v1", rows=2)
    source.set("b", "v1", rows=3)
    connector = make_connector(connection=connection, name="Source", code=source.code)
    logger = logging.getLogger("tests.ingest_requests")

    def execute(request, **options):
        logger.info("request %s in %s", request.action, threading.current_thread().name)
        return run_services.run_in_sandbox(request, **options)

    run = ingest_claim(run_id=services.ingest_create(connector=connector).pk)
    run = IngestExecution(run, execute=execute).execute()
    logger.info("after the run")

    assert run.status == RunStatus.SUCCEEDED, run.error
    lines = records(captured, "tests.ingest_requests")
    during, after = lines[:-1], lines[-1]
    assert {line["message"].split()[1] for line in during} == {"list", "read"}
    # Reads run in the ingest's pool threads: they carry the run's id too.
    assert any("ingest-read" in line["message"] for line in during)
    assert {line["run_id"] for line in during} == {run.pk}
    assert after["run_id"] is None
    assert {line["level"] for line in lines} == {"INFO"}
    assert all(line["process"] == os.getpid() for line in lines)


def test_the_text_format_names_the_run_only_inside_one():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RunIdFilter())
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("tests.text_format")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with run_logging(42):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    inside, outside = stream.getvalue().splitlines()
    assert inside.endswith(f"WARNING tests.text_format pid={os.getpid()} run=42 inside")
    assert outside.endswith(f"WARNING tests.text_format pid={os.getpid()} outside")
    assert inside[:4].isdigit() and inside[23] == "Z"  # 2026-01-31T12:00:00.123Z


def test_log_format_json_gives_json_lines_with_tracebacks():
    done = manage_shell(LOG, LOG_FORMAT="json")

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    ours = [line for line in lines if line["logger"] == "connectors.check"]
    assert [(line["level"], line["message"]) for line in ours] == [
        ("INFO", "plain line"),
        ("ERROR", "it failed"),
    ]
    assert ours[1]["exception"].endswith("ValueError: bad value")
    assert ours[0]["process"] == ours[1]["process"] != os.getpid()
    assert ours[0]["run_id"] is None and ours[0]["time"].endswith("Z")


def test_the_default_format_is_one_text_line_per_record():
    done = manage_shell(LOG)

    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert " INFO connectors.check pid=" in first and first.endswith(" plain line")
    assert "Traceback (most recent call last)" in done.stderr


def test_an_unknown_log_format_stops_start_up_naming_it():
    done = manage_shell("print('started')", LOG_FORMAT="xml")

    assert done.returncode != 0
    assert "LOG_FORMAT must be one of text, json, not 'xml'" in done.stderr
    assert "started" not in done.stdout
