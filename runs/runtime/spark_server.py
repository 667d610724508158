"""A local Spark Connect server, started on demand and kept: the "spark" interface's default.

`LocalSparkServer(directory).remote()` returns an `sc://localhost:PORT/;token=...` URL for a
running server, starting one (pyspark's own `sbin/start-connect-server.sh --wait`, foreground, in
its own session) when none runs or the last one died. Plain Python, no Django import.

Decisions:
- Loopback only: SPARK_LOCAL_IP=127.0.0.1 and spark.connect.grpc.binding.address=127.0.0.1; a
  random free port (picked here, then bound by the server: a small race, retried once).
- The token is passed to the JVM in SPARK_CONNECT_AUTHENTICATE_TOKEN (the server reads that
  variable; never on the command line, so `ps` does not show it). Clients put it in the URL;
  the host must be "localhost" for pyspark to send it over a local (non-TLS) channel.
- UI off, WARN logs (a log4j2.properties in DIRECTORY/conf), the JVM's output in
  DIRECTORY/logs/connect-server.log, its process id in DIRECTORY/connect-server.pid.
- Health: the launcher process is alive and the port accepts connections; otherwise the whole
  process group is killed and a new server is started by the next `remote()`. Spark Connect
  sessions leak Python worker daemons (SPARK-54055), so a server whose processes together use
  more than `max_memory_mb` of resident memory is restarted by the next `remote()` too (a query
  another client is running then fails; previews release their session when they finish).
- A new server runs one small warm-up query (a client in a subprocess) before `remote()` returns:
  its first query costs several seconds of JVM warm-up, which would otherwise count against the
  first preview's timeout.
- A query the server is running when a sandboxed client is killed (timeout, cancel) may go on
  on the server until it ends: the server does not learn that its client died.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

READY_TIMEOUT_S = 90.0  # a cold start takes 10-20 s on a small machine
WARM_UP_QUERY = """
import os, sys, warnings
warnings.simplefilter("ignore")
from pyspark.sql.connect.session import SparkSession
spark = SparkSession.builder.remote(os.environ["WARM_UP_REMOTE"]).getOrCreate()
frame = spark.createDataFrame([("a", 1)], schema="s string, n long")
frame.limit(1).toArrow()
frame.count()
spark.stop()
"""
STOP_GRACE_S = 5.0
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


class SparkServerError(Exception):
    """The local Spark Connect server could not be started."""


def pyspark_home() -> Path:
    """Return the directory of the installed pyspark (it holds sbin/, bin/ and jars/)."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkServerError("pyspark is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def free_loopback_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(port: int, timeout_s: float = 0.5) -> bool:
    """Say whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalSparkServer:
    """One local Spark Connect server kept under `directory`; thread-safe."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        master: str = "local[*]",
        driver_memory: str = "1g",
        ready_timeout_s: float = READY_TIMEOUT_S,
        max_memory_mb: int = 0,
        warm_up: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.master = master
        self.driver_memory = driver_memory
        self.ready_timeout_s = ready_timeout_s
        self.max_memory_mb = max_memory_mb  # 0: no bound
        self.warm_up = warm_up
        self.log_path = self.directory / "logs" / "connect-server.log"
        self.pid_path = self.directory / "connect-server.pid"
        self.token = ""
        self.port: int | None = None
        self.starts = 0  # how many servers this object started (restarts included)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ public

    def remote(self) -> str:
        """Return the URL of a running server, starting (or restarting) it when needed."""
        with self._lock:
            if not self._healthy() or self._over_memory():
                self._stop_locked()
                self._start_locked()
            assert self.port is not None
            return f"sc://localhost:{self.port}/;token={self.token}"

    def is_up(self) -> bool:
        """Say whether the server is running and accepting connections (never starts it)."""
        with self._lock:
            return self._healthy()

    def jvm_pid(self) -> int | None:
        """Return the server JVM's process id, None when it is not running."""
        process = self._process
        if process is None or process.poll() is not None:
            return None
        for pid in [process.pid, *_children(process.pid)]:
            argv = _cmdline(pid).split(" ")
            if os.path.basename(argv[0]) == "java" and SERVER_CLASS in argv:
                return pid
        return None

    def memory_mb(self) -> float:
        """Return the resident memory of the server and the processes it started, in MB."""
        process = self._process
        if process is None or process.poll() is not None:
            return 0.0
        pids, seen = [process.pid], set()
        while pids:
            pid = pids.pop()
            if pid not in seen:
                seen.add(pid)
                pids += _children(pid)
        return sum(_rss_mb(pid) for pid in seen)

    def stop(self) -> None:
        """Stop the server and every process it started."""
        with self._lock:
            self._stop_locked()

    # ------------------------------------------------------------ internals

    def _healthy(self) -> bool:
        process = self._process
        alive = process is not None and process.poll() is None
        return alive and self.port is not None and port_accepts(self.port)

    def _over_memory(self) -> bool:
        return bool(self.max_memory_mb) and self.memory_mb() > self.max_memory_mb

    def _start_locked(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(exist_ok=True)
        conf_dir = self.directory / "conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        self._kill_leftover()
        problem = ""
        for _attempt in range(2):  # the free port may be taken before the server binds it
            self.token = secrets.token_urlsafe(32)
            self.port = free_loopback_port()
            self._process = self._launch(conf_dir)
            self.pid_path.write_text(f"{self._process.pid}\n")
            problem = self._wait_ready()
            if not problem and self.warm_up:
                problem = self._run_warm_up()
            if not problem:
                self.starts += 1
                return
            self._stop_locked()
        raise SparkServerError(f"The local Spark Connect server did not start: {problem}")

    def _launch(self, conf_dir: Path) -> subprocess.Popen[bytes]:
        home = pyspark_home()
        script = home / "sbin" / "start-connect-server.sh"
        if not script.is_file():
            raise SparkServerError(f"pyspark has no {script}")
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "SPARK_HOME": str(home),
            "SPARK_CONF_DIR": str(conf_dir),
            "SPARK_LOG_DIR": str(self.directory / "logs"),
            "SPARK_PID_DIR": str(self.directory),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_CONNECT_AUTHENTICATE_TOKEN": self.token,
        }
        if "JAVA_HOME" in os.environ:
            env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        argv = [
            str(script),
            "--wait",  # foreground: this process is the server's parent
            "--master",
            self.master,
            "--driver-memory",
            self.driver_memory,
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            f"spark.connect.grpc.binding.port={self.port}",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            f"spark.local.dir={self.directory / 'tmp'}",
            "--conf",
            f"spark.sql.warehouse.dir={self.directory / 'warehouse'}",
        ]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                argv,
                env=env,
                cwd=str(self.directory),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def _wait_ready(self) -> str:
        """Wait until the port accepts connections; return "" or what went wrong."""
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return f"it exited with status {self._process.returncode}; {self._log_tail()}"
            if port_accepts(self.port):
                return ""
            time.sleep(0.2)
        return f"it was not ready after {self.ready_timeout_s:.0f} s; {self._log_tail()}"

    def _run_warm_up(self) -> str:
        """Run the warm-up query; return "" or what went wrong."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "WARM_UP_REMOTE": f"sc://localhost:{self.port}/;token={self.token}",
        }
        try:
            done = subprocess.run(
                [sys.executable, "-c", WARM_UP_QUERY],
                env=env,
                cwd=str(self.directory),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.ready_timeout_s,
            )
        except subprocess.TimeoutExpired:
            return f"its warm-up query did not finish in {self.ready_timeout_s:.0f} s"
        if done.returncode != 0:
            output = done.stderr.decode(errors="replace").replace(self.token, "****")
            return f"its warm-up query failed: {output[-1500:]}"
        return ""

    def _log_tail(self) -> str:
        try:
            text = self.log_path.read_bytes()[-1500:].decode(errors="replace").strip()
        except OSError:
            return f"see {self.log_path}"
        return f"end of {self.log_path}: {text}" if text else f"{self.log_path} is empty"

    def _stop_locked(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _kill_group(process.pid, process)
        with contextlib.suppress(OSError):
            self.pid_path.unlink()

    def _kill_leftover(self) -> None:
        """Kill a server an earlier process left behind in this directory (its pid file)."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if any(SERVER_CLASS in _cmdline(p) for p in [pid, *_children(pid)]):
            _kill_group(pid, None)


def _kill_group(pid: int, process: subprocess.Popen[bytes] | None) -> None:
    """Terminate a process group, then kill it if it is still there after a grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_S)
    else:
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_GRACE_S)


def _children(pid: int) -> list[int]:
    """Return the process ids of a process's children (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            found += [int(child) for child in task.read_text().split()]
    return found


def _rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
