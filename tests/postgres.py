"""A throw-away PostgreSQL cluster for the tests: `python -m tests.postgres start DIR` prints its
DATABASE_URL (starting it when it is not running), `python -m tests.postgres stop DIR` stops it.
From Python: `Cluster(DIR).start()` returns the same URL, `.stop()` stops it.

The server listens on 127.0.0.1 only, on a free port, with a generated password (scram-sha-256)
and without a Unix socket (nothing under /var/run). It runs without fsync: a crash loses the
cluster, which only the tests use. initdb and the server refuse to run as root, so as root they
run as the `postgres` system user (Debian's package creates it), and the cluster's files live in
a private directory under /var/tmp, owned by that user, because it cannot enter DIR (the test
DATA_DIR is mode 0700); `stop` removes that directory. As any other user, the files live in
DIR/data and are kept for the next start. DIR/cluster.json (mode 0600) records where the files
are, the password and the port.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg

SUPERUSER = "connectors"
DATABASE = "connectors"
HOST = "127.0.0.1"
TIMEOUT_S = 60
SETTINGS = f"""
# tests/postgres.py: loopback only, no Unix socket, no durability (a throw-away test cluster).
listen_addresses = '{HOST}'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class ClusterError(RuntimeError):
    """PostgreSQL is missing, or a step of starting or stopping the cluster failed."""


def binaries() -> Path:
    """The directory of initdb and pg_ctl: the newest /usr/lib/postgresql/VERSION/bin (Debian
    keeps them off PATH), else the one on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [
            int(part) for part in path.parent.parent.name.split(".") if part.isdigit()
        ],
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ClusterError(
        "PostgreSQL is not installed: no initdb under /usr/lib/postgresql/*/bin nor on PATH "
        "(Debian: apt-get install postgresql)"
    )


def server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: None for ourselves, the `postgres` user when root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterError(
            "running as root, and PostgreSQL refuses to: there is no `postgres` system user to "
            "run it as (Debian's postgresql package creates it)"
        ) from None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster managed from DIRECTORY: `start() -> url`, `stop()`."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).resolve()
        self.state_file = self.directory / "cluster.json"

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> str:
        """Start the cluster (creating it the first time) unless it runs; return its URL."""
        with self._locked():
            state = self._read_state()
            if state and self._running(state):
                return self._url(state)
            if not state or not (Path(state["data"]) / "PG_VERSION").is_file():
                if state and state["outside"]:  # what is left of a cluster that did not start
                    shutil.rmtree(Path(state["data"]).parent, ignore_errors=True)
                state = self._create()
            self._start_server(state)
            self._create_database(state)
            return self._url(state)

    def stop(self) -> None:
        """Stop the server if it runs, and wait until it has; remove files kept outside DIR."""
        with self._locked():
            state = self._read_state()
            if not state:
                return
            if self._running(state):
                stopped = self._pg_ctl(state, "stop", "-m", "fast", "-w", "-t", str(TIMEOUT_S))
                if stopped.returncode != 0:
                    raise ClusterError(f"pg_ctl stop failed: {stopped.stdout}{stopped.stderr}")
            if state["outside"]:
                shutil.rmtree(Path(state["data"]).parent, ignore_errors=True)
                self.state_file.unlink()

    def url(self) -> str | None:
        """The URL of the running cluster, or None when it does not run."""
        state = self._read_state()
        return self._url(state) if state and self._running(state) else None

    def _create(self) -> dict:
        account = server_account()
        if account:
            home = Path(tempfile.mkdtemp(prefix="cs-postgres-", dir="/var/tmp"))
            os.chown(home, account.pw_uid, account.pw_gid)
        else:
            home = self.directory
        state = {"data": str(home / "data"), "outside": bool(account), "port": 0}
        state["password"] = secrets.token_urlsafe(24)
        password_file = home / "password"
        self._write_private(password_file, state["password"] + "\n")
        if account:
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            created = self._run(
                [
                    str(binaries() / "initdb"),
                    *("-D", state["data"], "-U", SUPERUSER, f"--pwfile={password_file}"),
                    *("--auth-host=scram-sha-256", "--auth-local=reject"),
                    *("--encoding=UTF8", "--locale=C", "--no-sync"),
                ],
                home,
            )
        finally:
            password_file.unlink()
        if created.returncode != 0:
            if account:
                shutil.rmtree(home, ignore_errors=True)
            raise ClusterError(f"initdb failed: {created.stdout}{created.stderr}")
        with open(Path(state["data"]) / "postgresql.conf", "a") as conf:
            conf.write(SETTINGS)
        self._write_state(state)
        return state

    def _start_server(self, state: dict) -> None:
        """pg_ctl start on a free port; a few tries, in case another process takes the port."""
        log = Path(state["data"]).parent / "server.log"
        for _ in range(3):
            state["port"] = free_port()
            started = self._pg_ctl(
                state, "start", "-w", "-t", str(TIMEOUT_S), "-l", str(log),
                "-o", f"-p {state['port']}",
            )  # fmt: skip
            if started.returncode == 0:
                self._write_state(state)
                return
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise ClusterError(f"pg_ctl start failed: {started.stdout}{started.stderr}\n{tail}")

    def _create_database(self, state: dict) -> None:
        with psycopg.connect(
            host=HOST, port=state["port"], user=SUPERUSER, password=state["password"],
            dbname="postgres", autocommit=True, connect_timeout=TIMEOUT_S,
        ) as connection:  # fmt: skip
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')

    def _running(self, state: dict) -> bool:
        if not (Path(state["data"]) / "PG_VERSION").is_file():
            return False
        return self._pg_ctl(state, "status").returncode == 0

    def _pg_ctl(self, state: dict, *arguments: str) -> subprocess.CompletedProcess:
        argv = [str(binaries() / "pg_ctl"), "-D", state["data"], *arguments]
        return self._run(argv, Path(state["data"]).parent)

    def _run(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program as the server's account (as root: the `postgres` user)."""
        account = server_account()
        as_account = {}
        if account:
            as_account = {
                "user": account.pw_uid, "group": account.pw_gid, "extra_groups": [],
                "env": {**os.environ, "HOME": account.pw_dir, "USER": account.pw_name},
            }  # fmt: skip
        return subprocess.run(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=TIMEOUT_S * 2, **as_account,
        )  # fmt: skip

    def _url(self, state: dict) -> str:
        password = quote(state["password"], safe="")
        return f"postgres://{SUPERUSER}:{password}@{HOST}:{state['port']}/{DATABASE}"

    def _read_state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def _write_state(self, state: dict) -> None:
        self._write_private(self.state_file, json.dumps(state))

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One start or stop at a time on DIRECTORY."""
        # Missing parents are private too: the first of them may be the tests' DATA_DIR.
        missing = [path for path in (self.directory, *self.directory.parents) if not path.exists()]
        for path in reversed(missing):
            path.mkdir(mode=0o700, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print("usage: python -m tests.postgres start|stop DIRECTORY", file=sys.stderr)
        return 2
    cluster = Cluster(argv[1])
    try:
        if argv[0] == "start":
            print(cluster.start())
        else:
            cluster.stop()
    except (ClusterError, subprocess.TimeoutExpired, psycopg.Error) as error:
        print(f"tests.postgres: {argv[0]} {argv[1]}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
