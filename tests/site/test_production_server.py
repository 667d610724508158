"""The production server as `make run` starts it: gunicorn with connectors_site/gunicorn_conf.py
(threaded workers, static files by WhiteNoise, the project's log format), /healthz against a
real worker and a database that is not there, and a stop that leaves nothing behind (a local
Spark server a web worker started included)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests.processes import wait_for
from tests.runs.manage_site import WorkerSite, worker_site

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "connectors_site/gunicorn_conf.py"]  # make run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_mentioning(text: str) -> list[int]:
    """The pids whose command line contains `text`."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def catches(pid: int, number: int) -> bool:
    """Whether the process has a handler of its own for signal `number` (it is set up)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s+([0-9a-f]+)$", status, re.MULTILINE)[1], 16)
    return bool(caught & (1 << (number - 1)))


class Server:
    """gunicorn, started like `make run` does, and a plain HTTP client for it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with open(log, "w") as output:
            self.process = subprocess.Popen(
                [*GUNICORN, f"--bind=127.0.0.1:{self.port}"],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.cookies: dict[str, str] = {}
        ready = wait_for(lambda: self.accepts() or self.process.poll() is not None, timeout=60)
        assert ready and self.process.poll() is None, log.read_text()
        assert wait_for(lambda: len(children(self.process.pid)) == 2, timeout=30)

    def accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def request(self, method: str, path: str, form: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        connection.close()
        return response, content

    def health(self) -> tuple[int, dict]:
        response, content = self.request("GET", "/healthz")
        return response.status, json.loads(content)

    def log_in(self, username: str, password: str) -> None:
        _, page = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1].decode()
        form = {"csrfmiddlewaretoken": token, "username": username, "password": password}
        response, _ = self.request("POST", "/accounts/login/", form)
        assert response.status == 302, "the login failed"

    def stop(self, number: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the master; return its exit status once it and its workers are gone."""
        workers = children(self.process.pid)
        self.process.send_signal(number)
        try:
            status = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers))
        return status


@contextmanager
def server(env: dict[str, str], log: Path) -> Iterator[Server]:
    started = Server(env, log)
    try:
        yield started
    finally:
        if started.process.poll() is None:
            os.killpg(started.process.pid, signal.SIGKILL)
            started.process.wait(10)


@pytest.fixture(scope="module")
def site() -> Iterator[WorkerSite]:
    with worker_site() as site:
        site.manage("collectstatic", "--no-input", "-v", "0")
        yield site


def log_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_it_serves_pages_and_static_files_reports_the_worker_and_stops(site):
    env = {**site.env, "LOG_FORMAT": "json", "WEB_WORKERS": "2", "WEB_THREADS": "2"}
    # A Spark folder of its own: the tests' shared Spark server may be up in the default one.
    env["SPARK_DIR"] = str(site.directory / "spark")
    log = site.directory / "gunicorn.log"
    with server(env, log) as web:
        response, page = web.request("GET", "/accounts/login/")
        assert response.status == 200
        assets = re.findall(rb'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page)
        assert b"/static/css/app.css" in assets and len(assets) >= 3
        for asset in assets:
            response, content = web.request("GET", asset.decode())
            assert response.status == 200, asset
            assert response.headers["Content-Type"].startswith(("text/css", "text/javascript"))
            assert content

        status, body = web.health()
        assert status == 503 and body["status"] == "unavailable"
        assert body["checks"]["database"].pop("duration_ms") >= 0
        assert body["checks"] == {
            "database": {"ok": True, "vendor": "sqlite"},
            "worker": {"ok": False, "alive": 0, "last_beat_at": None},
            "spark": {
                "ok": True,
                "kind": "local",
                "state": "not started",
                "isolation": "bubblewrap",
            },
        }
        worker = site.start_worker()
        try:
            assert wait_for(lambda: web.health()[0] == 200, timeout=60), web.health()
            assert web.health()[1]["checks"]["worker"]["alive"] == 1
            assert wait_for(lambda: catches(worker.pid, signal.SIGTERM), timeout=30)
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0, output
        assert web.health()[0] == 503  # a worker that exits says so

        assert web.stop() == 0

    lines = log_lines(log)  # every line is JSON
    assert {"gunicorn.error", "gunicorn.access"} <= {line["logger"] for line in lines}
    access = [line["message"] for line in lines if line["logger"] == "gunicorn.access"]
    assert any('"GET /healthz HTTP/1.1" 503' in message for message in access)
    pids = {line["process"] for line in lines if line["logger"] == "gunicorn.access"}
    assert len(pids) >= 1 and web.process.pid not in pids  # the workers answer


def test_it_answers_503_when_the_database_cannot_be_reached(site):
    closed = free_port()
    env = {
        **site.env,
        "DATABASE_URL": f"postgres://studio:pw@127.0.0.1:{closed}/studio",
        "LOG_FORMAT": "json",
    }
    log = site.directory / "gunicorn-no-db.log"
    with server(env, log) as web:
        status, body = web.health()
        web.stop()

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {
        "ok": False,
        "vendor": "postgresql",
        "error": "OperationalError",
    }
    assert body["checks"]["worker"] == {"ok": False, "error": "no database"}
    warnings = [line for line in log_lines(log) if line["logger"] == "connectors_site.health"]
    assert str(closed) in warnings[0]["message"] and warnings[0]["level"] == "WARNING"


@pytest.mark.spark
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_also_stops_the_local_spark_server_a_web_worker_started(site, number):
    spark_dir = site.directory / f"spark-{number}"
    env = {**site.env, "SPARK_DIR": str(spark_dir), "SPARK_START_ON_OPEN": "true"}
    env |= {"ADMIN_USERNAME": "operator", "ADMIN_PASSWORD": "operator-pass-1234"}
    subprocess.run(
        [sys.executable, "manage.py", "ensure_admin"], cwd=settings.BASE_DIR, env=env, check=True
    )
    subprocess.run(
        [sys.executable, "manage.py", "load_examples"], cwd=settings.BASE_DIR, env=env, check=True
    )
    log = site.directory / f"gunicorn-spark-{number}.log"
    with server(env, log) as web:
        web.log_in("operator", "operator-pass-1234")
        response, _ = web.request("GET", "/connectors/languages-spark/")  # starts Spark
        assert response.status == 200

        def spark_up() -> bool:
            _, body = web.health()
            return body["checks"]["spark"]["state"] == "up"

        assert wait_for(spark_up, timeout=180, interval=1), log.read_text()[-3000:]
        assert processes_mentioning(str(spark_dir))  # the launcher and the JVM

        assert web.stop(number) == 0

    assert wait_for(lambda: not processes_mentioning(str(spark_dir)), timeout=30)
    assert not (spark_dir / "connect-server.json").exists()
