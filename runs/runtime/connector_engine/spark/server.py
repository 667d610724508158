"""A local Spark Connect server, started on demand and shared: the "spark" interface's default.

`LocalSparkServer(directory).remote()` returns an `sc://localhost:PORT/;token=...` URL for a
running server, starting one (pyspark's own `sbin/start-connect-server.sh --wait`, foreground, in
its own session) when none runs or the last one died. Plain Python, no Django import.

Decisions:
- Loopback only (SPARK_LOCAL_IP, the gRPC binding address), on a random free port (retried once).
- The token reaches the JVM as spark.connect.authenticate.token in a properties file
  (DIRECTORY/conf/token.properties, 0600) that is removed as soon as the server listens: before
  any client, hence any Python worker, exists. It is never on a command line (`ps`) nor in an
  environment (the Python workers inherit the JVM's). Clients put it in the URL; the host must
  be "localhost" for pyspark to send it over a local (non-TLS) channel. Every client has it
  (user code can read its own session's URL): it keeps out other local users, not tenants.
- UI off, WARN logs, the JVM's output in DIRECTORY/logs/connect-server.log. With
  `session_idle_s` the server ends a session idle that long (connector_engine.spark.sessions).
- Under bubblewrap (when bwrap is installed): Python UDFs, mapInPandas and Python data sources
  run in the server's Python workers, outside the sandbox, so the server gets the allow-list
  view of connector_engine.system.bubblewrap (read-only, private /tmp, /dev, /proc and PID
  namespace), the `hidden_paths` and DIRECTORY covered; DIRECTORY/tmp (spark.local.dir, the
  working directory) and DIRECTORY/warehouse bound back writable, DIRECTORY/conf read-only, plus
  the caller's `readonly_paths`, `writable_paths` and `readable_paths`. Its control files
  (state, lock, session leases) are invisible to code it runs; the network is shared. As root it
  runs as nobody (`runs_as_nobody`), owning only its own folders. Without bwrap it runs
  unwrapped and `isolation` says "reduced isolation". The workers run this interpreter
  (PYSPARK_PYTHON); project code reaches them only as session artifacts, as on a cluster.
- Every Python process the server starts first runs connector_engine.spark.worker_site (as
  sitecustomize, from DIRECTORY/conf/python, the only project path on its PYTHONPATH): not
  dumpable, in a Landlock domain of its own where the kernel has it. Under bwrap the JVM runs an
  execute-only copy of its binary (DIRECTORY/conf/java, 0111), so it is not dumpable either: no
  worker reads another process's /proc/<pid>/environ or mem.
- One server per DIRECTORY, shared by every process (web, worker): its launcher pid, port, token
  and owner pid are in DIRECTORY/connect-server.json (0600, replaced atomically); starting,
  restarting and stopping happen under an flock on DIRECTORY/connect-server.lock, so one process
  starts it and the others reuse it. `stop_if_owned()` (at exit) stops it only in the process
  that started it; a process that finds the owner dead adopts the server.
- Health: the launcher process is alive and the port accepts connections; otherwise the whole
  process group is killed (a pid from the state file only when a Spark Connect server runs under
  it) and a new server is started by the next `remote()`. Spark Connect sessions leak Python
  worker daemons (SPARK-54055; connector_engine.spark.sessions bounds how many sessions there are),
  so a server whose processes together use more than `max_memory_mb` of resident memory is
  restarted by the next `remote()` too (a query another client is running then fails).
- The process tree (launcher -> ... -> JVM -> Python workers) is one process group: stopping
  signals it; `jvm_pid()` and `memory_mb()` walk it (connector_engine.spark.processes).
- A new server runs one small warm-up query before `remote()` returns, so the JVM's warm-up
  does not count against the first preview's timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from connector_engine.spark.processes import (
    SERVER_CLASS,
    cmdline,
    execute_only_copy,
    free_loopback_port,
    java_binary,
    kill_group,
    pid_alive,
    port_accepts,
    process_tree,
    rss_mb,
    runs_server,
)
from connector_engine.system.bubblewrap import (
    NOBODY_UID,
    become_nobody,
    bwrap_choice,
    bwrap_filesystem,
    bwrap_namespaces,
    share_with_nobody,
)

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
STATE_FILE = "connect-server.json"  # pid, port, token, owner (0600)
TOKEN_FILE = "token.properties"  # in conf: read by the JVM at start, removed once it listens
WORKER_SITE = Path(__file__).with_name("worker_site.py")  # the Python workers' sitecustomize
LOCK_FILE = "connect-server.lock"  # flock: one process starts, adopts or stops the server
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


class LocalSparkServer:
    """The local Spark Connect server kept under `directory`, shared by processes; thread-safe."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        master: str = "local[*]",
        driver_memory: str = "1g",
        ready_timeout_s: float = READY_TIMEOUT_S,
        max_memory_mb: int = 0,
        session_idle_s: float = 0.0,
        warm_up: bool = True,
        hidden_paths: Sequence[str | os.PathLike[str]] = (),
        readonly_paths: Sequence[str | os.PathLike[str]] = (),
        writable_paths: Sequence[str | os.PathLike[str]] = (),
        readable_paths: Sequence[str | os.PathLike[str]] = (),
        use_bwrap: bool | None = None,
    ) -> None:
        self.directory = Path(os.path.abspath(directory))
        self.master = master
        self.driver_memory = driver_memory
        self.ready_timeout_s = ready_timeout_s
        self.max_memory_mb = max_memory_mb  # 0: no bound
        self.session_idle_s = session_idle_s  # 0: Spark's default (an hour)
        self.warm_up = warm_up
        self.hidden_paths = [os.path.abspath(path) for path in hidden_paths]
        self.readonly_paths = [os.path.abspath(path) for path in readonly_paths]
        self.writable_paths = [os.path.abspath(path) for path in writable_paths]
        self.readable_paths = [os.path.abspath(path) for path in readable_paths]
        self.log_path = self.directory / "logs" / "connect-server.log"
        self.state_path = self.directory / STATE_FILE
        self.lock_path = self.directory / LOCK_FILE
        self.conf_dir = self.directory / "conf"
        self.token_path = self.conf_dir / TOKEN_FILE
        self.worker_path_dir = self.conf_dir / "python"  # on the Python workers' PYTHONPATH
        self.work_dir = self.directory / "tmp"  # spark.local.dir and the working directory
        self.warehouse_dir = self.directory / "warehouse"
        self._bwrap, self.isolation = bwrap_choice(
            use_bwrap,
            "Python code the Spark server runs (UDFs, mapInPandas, data sources) can read every "
            "file this process can",
        )
        self.use_bwrap = self._bwrap is not None
        self.token = ""
        self.port: int | None = None
        self.pid: int | None = None  # the launcher's: the server's process group
        self.starts = 0  # how many servers this object started (restarts included)
        self._owner: int | None = None  # the pid of the process that stops the server at exit
        self._process: subprocess.Popen[bytes] | None = None  # when this object started it
        self._lock = threading.Lock()

    # ------------------------------------------------------------ public

    def remote(self) -> str:
        """Return the URL of a running server, starting (or restarting) it when needed."""
        with self._lock:
            if not self._healthy() or self._over_memory():
                with self._control_lock():
                    self._find_running(adopt=True)
                    if not self._healthy() or self._over_memory():
                        self._stop_locked()
                        self._start_locked()
            return f"sc://localhost:{self.port}/;token={self.token}"

    @property
    def owned(self) -> bool:
        """Say whether this process stops the server when it exits."""
        return self.pid is not None and self._owner == os.getpid()

    def is_up(self) -> bool:
        """Say whether a server (this process's or another's) is up here; never starts one."""
        with self._lock:
            if not self._healthy():
                self._find_running(adopt=False)
            return self._healthy()

    def jvm_pid(self) -> int | None:
        """Return the server JVM's process id, None when it is not running."""
        if self.pid is None or not self._alive(self.pid):
            return None
        for pid in process_tree(self.pid):
            argv = cmdline(pid).split(" ")
            if os.path.basename(argv[0]) == "java" and SERVER_CLASS in argv:
                return pid
        return None

    def memory_mb(self) -> float:
        """Return the resident memory of the server and the processes it started, in MB."""
        if self.pid is None or not self._alive(self.pid):
            return 0.0
        return sum(rss_mb(pid) for pid in process_tree(self.pid))

    def stop(self) -> None:
        """Stop the server in this directory, whichever process started it."""
        with self._lock, self._control_lock():
            self._find_running(adopt=False)
            self._stop_locked()

    def stop_if_owned(self) -> None:
        """Stop the server if this process started (or adopted) it; otherwise just forget it."""
        with self._lock:
            if not self.owned:
                self._forget()
                return
            with self._control_lock():
                state = self._read_state()
                if state is not None and state["pid"] == self.pid:
                    self._stop_locked()
                else:  # another process replaced it meanwhile: that one is not ours to stop
                    self._forget()

    # ------------------------------------------------------------ state shared by processes

    @contextlib.contextmanager
    def _control_lock(self) -> Iterator[None]:
        """Hold the directory's flock: one process at a time starts, adopts or stops."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        fields = {"pid": int, "port": int, "token": str, "owner": int}
        if not isinstance(state, dict) or any(
            not isinstance(state.get(name), kind) for name, kind in fields.items()
        ):
            return None
        return state

    def _write_state(self) -> None:
        state = {"pid": self.pid, "port": self.port, "token": self.token, "owner": self._owner}
        partial = self.state_path.with_name(self.state_path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(state, handle)
        os.replace(partial, self.state_path)

    def _find_running(self, *, adopt: bool) -> None:
        """Use the server the state file names when one runs; with `adopt`, own it if orphaned."""
        state = self._read_state()
        if state is None or not runs_server(state["pid"]):
            return
        if state["pid"] != self.pid:
            if self._process is not None and self._process.pid != state["pid"]:
                self._process = None  # ours was replaced by another process's
            self.pid, self.port, self.token = state["pid"], state["port"], state["token"]
        self._owner = state["owner"]
        if adopt and self._owner != os.getpid() and not pid_alive(self._owner):
            self._owner = os.getpid()  # its starter died: this process stops it at exit
            self._write_state()

    def _forget(self) -> None:
        self.pid, self.port, self.token, self._owner, self._process = None, None, "", None, None

    # ------------------------------------------------------------ internals

    def _alive(self, pid: int) -> bool:
        process = self._process
        if process is not None and process.pid == pid:
            return process.poll() is None  # reaps it when it died
        return pid_alive(pid)

    def _healthy(self) -> bool:
        if self.pid is None or self.port is None:
            return False
        return self._alive(self.pid) and port_accepts(self.port)

    def _over_memory(self) -> bool:
        return bool(self.max_memory_mb) and self.memory_mb() > self.max_memory_mb

    def _prepare_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (self.log_path.parent, self.conf_dir, self.work_dir, self.warehouse_dir):
            path.mkdir(mode=0o700, exist_ok=True)
        (self.conf_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        self.worker_path_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copyfile(WORKER_SITE, self.worker_path_dir / "sitecustomize.py")
        for path in [*self.readonly_paths, *self.writable_paths]:
            if not os.path.exists(path):  # a bind needs its source
                os.makedirs(path, mode=0o700, exist_ok=True)
        self._give_to_nobody()

    def _start_locked(self) -> None:
        self._prepare_directory()
        problem = ""
        for _attempt in range(2):  # the free port may be taken before the server binds it
            self.token = secrets.token_urlsafe(32)
            self.port = free_loopback_port()
            self._write_token_file()
            try:
                self._process = self._launch()
                self.pid = self._process.pid
                problem = self._wait_ready()
            finally:  # listening, it has read the token: no worker may find the file later
                self.token_path.unlink(missing_ok=True)
            if not problem and self.warm_up:
                problem = self._run_warm_up()
            if not problem:
                self._owner = os.getpid()
                self._write_state()
                self.starts += 1
                return
            self._stop_locked()
        raise SparkServerError(f"The local Spark Connect server did not start: {problem}")

    def _launch(self) -> subprocess.Popen[bytes]:
        home = pyspark_home()
        script = home / "sbin" / "start-connect-server.sh"
        if not script.is_file():
            raise SparkServerError(f"pyspark has no {script}")
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "SPARK_HOME": str(home),
            "SPARK_CONF_DIR": str(self.conf_dir),
            "SPARK_LOG_DIR": str(self.work_dir),
            "SPARK_PID_DIR": str(self.work_dir),
            "SPARK_LOCAL_IP": "127.0.0.1",
            # The Python workers (UDFs, data sources) run this interpreter, worker_site first.
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": str(self.worker_path_dir),
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
            "--properties-file",
            str(self.token_path),
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            f"spark.connect.grpc.binding.port={self.port}",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            f"spark.local.dir={self.work_dir}",
            "--conf",
            f"spark.sql.warehouse.dir={self.warehouse_dir}",
        ]
        if self.session_idle_s:
            timeout_ms = round(self.session_idle_s * 1000)
            argv += [
                "--conf",
                f"spark.connect.session.manager.defaultSessionTimeout={timeout_ms}ms",
            ]
        if self.use_bwrap:
            argv = [*self._bwrap_prefix(), *argv]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                argv,
                env=env,
                cwd=str(self.work_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def _write_token_file(self) -> None:
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"spark.connect.authenticate.token {self.token}\n")
        if self.runs_as_nobody:
            os.chown(self.token_path, NOBODY_UID, NOBODY_UID)

    def _bwrap_prefix(self) -> list[str]:
        """bubblewrap for the server: see the module docstring for what it sees."""
        assert self._bwrap is not None
        readonly = [(path, path) for path in [str(self.conf_dir), *self.readonly_paths]]
        writable = [str(self.work_dir), str(self.warehouse_dir), *self.writable_paths]
        java = java_binary()
        if java is not None:  # the JVM runs a binary it may not read: it is not dumpable
            readonly.append((execute_only_copy(java, self.conf_dir / "java"), java))
        argv = [self._bwrap]
        argv += bwrap_filesystem(
            [*self.hidden_paths, str(self.directory)],
            readonly_binds=readonly,
            writable_binds=[(path, path) for path in writable],
            readable_paths=self.readable_paths,
        )
        # No --new-session: the whole tree stays in the launcher's process group, which
        # stop() signals. No --die-with-parent: the server outlives the thread that started it.
        # As root, the server becomes nobody (see `runs_as_nobody`).
        keep = ("CAP_SETUID", "CAP_SETGID") if self.runs_as_nobody else ()
        argv += bwrap_namespaces(root_capabilities=keep, unshare_cgroup=False)
        argv += ["--chdir", str(self.work_dir), "--"]
        return [*argv, *become_nobody()] if self.runs_as_nobody else argv

    @property
    def runs_as_nobody(self) -> bool:
        """Whether the server runs as nobody: when the app is root (under bubblewrap). Code that
        reaches it (UDFs, data sources) is then never root on host files."""
        return bool(self._bwrap) and os.geteuid() == 0 and bool(become_nobody())

    def _give_to_nobody(self) -> None:
        """Let nobody have what the server writes of its own (its configuration, the token file
        included, which is deleted once it listens) and enter the folders it reads."""
        if self.runs_as_nobody:
            owned = [self.conf_dir, self.work_dir, self.warehouse_dir, *self.writable_paths]
            share_with_nobody(owned, entered=self.readonly_paths)

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
                cwd=str(self.work_dir),
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
        """Kill the known server and any the state file names; remove the state file."""
        process = self._process
        pids = {self.pid} if self.pid is not None else set()
        state = self._read_state()
        if state is not None:
            pids.add(state["pid"])
        for pid in pids:
            if process is not None and process.pid == pid:
                kill_group(pid, process)
            elif runs_server(pid):  # never signal a pid that was reused by something else
                kill_group(pid, None)
        with contextlib.suppress(OSError):
            self.state_path.unlink()
        self._forget()
