"""A throw-away Connector Studio site for benchmarks: its own data folder, a user, a connection
and connectors, the production HTTP server (gunicorn, threaded workers) and a logged-in HTTP
client, so a benchmark measures what a browser gets."""

from __future__ import annotations

import http.client
import http.cookies
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-password-1"
WORKERS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mb(pid: int) -> float:
    """Memory of a process and everything below it, in MB: the sum of their proportional set
    sizes (PSS, /proc/<pid>/smaps_rollup), so pages forks share are counted once."""
    total, frontier = 0, [pid]
    while frontier:
        current = frontier.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        match = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
        total += int(match[1]) if match else 0
        frontier += [int(child) for child in children]
    return total / 1024


class Site:
    """Set up with `Site()`, then `start()` the server; `stop()` removes everything."""

    def __init__(self) -> None:
        # Outside /tmp: the sandbox gives user code a /tmp of its own.
        self.data_dir = tempfile.mkdtemp(prefix="cs-bench-", dir="/var/tmp")
        self.port = free_port()
        self.env = {**os.environ, "DATA_DIR": self.data_dir, "ALLOWED_HOSTS": "127.0.0.1"}
        self.server: subprocess.Popen | None = None
        self.manage("migrate", "--noinput")
        self.python(
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({USER!r}, password={PASSWORD!r})"
        )

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def python(self, code: str) -> str:
        """Run Django code in the site (a `manage.py shell -c`)."""
        return self.manage("shell", "-c", code)

    def connector(self, name: str, code: str, *, packages: str = "", credentials: str = "") -> str:
        """Create a connection owned by the bench user with one connector; return its slug."""
        script = (
            "from django.contrib.auth import get_user_model\n"
            "from connections import services\n"
            f"owner = get_user_model().objects.get(username={USER!r})\n"
            f"c = services.connection_create(name={name!r}, owner=owner, "
            f"credentials={credentials!r}, packages={packages!r})\n"
            f"k = services.connector_create(connection=c, name={name!r}, code={code!r})\n"
            "print(k.slug)\n"
        )
        return self.python(script).strip().splitlines()[-1]

    def start(self, command: list[str] | None = None) -> None:
        """Start the server (gunicorn, WORKERS threaded workers, unless another command is
        given)."""
        argv = command or [
            sys.executable,
            "-m",
            "gunicorn",
            "connectors_site.wsgi",
            f"--bind=127.0.0.1:{self.port}",
            f"--workers={WORKERS}",
            "--worker-class=gthread",
            "--threads=4",
        ]
        self.server = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def start_worker(self) -> subprocess.Popen:
        """Start `manage.py worker` (ingests, schedules) for this site."""
        return subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @staticmethod
    def stop_process(process: subprocess.Popen) -> None:
        os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(30)

    def client(self) -> Client:
        client = Client(self.port)
        client.login()
        return client

    def stop(self) -> None:
        if self.server is not None:
            self.stop_process(self.server)
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Client:
    """One keep-alive HTTP connection with a logged-in session, as a browser has."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, fields: dict | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
            headers["Referer"] = f"http://127.0.0.1:{self.connection.port}/"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = http.cookies.SimpleCookie(header)
            self.cookies.update({key: morsel.value for key, morsel in cookie.items()})
        return response, content

    def login(self) -> None:
        self.request("GET", "/accounts/login/")
        fields = {"username": USER, "password": PASSWORD}
        fields["csrfmiddlewaretoken"] = self.cookies["csrftoken"]
        response, _ = self.request("POST", "/accounts/login/", fields)
        if response.status != 302:
            raise RuntimeError(f"login failed: {response.status}")


def server_timing(header: str | None) -> dict[str, float]:
    """The phases of a Server-Timing header, in ms."""
    phases = {}
    for part in (header or "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name and duration:
            phases[name] = float(duration)
    return phases
