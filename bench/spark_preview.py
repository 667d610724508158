"""Compare a spark `read` preview through the warm local Connect server with a cold SparkSession.

Usage: .venv/bin/python bench/spark_preview.py [--n 20] [--cold 3] [--memory-previews 100]

Warm: the seed's languages example read through the sandbox (a fresh Connect client per preview,
in a leased pooled session that is reset first, as in the app) against one local Spark Connect
server started beforehand (its start-up time is printed, not counted). Cold: a fresh Python
process that builds a local SparkSession and reads the same partition, per preview. Then the
server's resident memory after --memory-previews more pooled previews, and after as many with a
new session per preview (released at the end: the app before the pool). The previews are one
connection's (a tenant), so the sandbox imports what they imported (the Connect client) ahead of
the next one, as in the app. Prints where a warm preview's time goes (the sandbox's timings) and
the resident memory of the sandbox. Targets: server start to first preview <= 15 s; warm p50
<= 0.4 s and >= 10x faster than cold; memory stays bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector_engine.protocol import SandboxRequest  # noqa: E402
from connector_engine.sandbox import Sandbox, run_action  # noqa: E402
from connector_engine.spark.server import LocalSparkServer  # noqa: E402
from connector_engine.spark.sessions import SessionPool  # noqa: E402

EXAMPLES = ROOT / "connections" / "examples"
CODE = (EXAMPLES / "languages_spark.py").read_text()
LIBRARY = (EXAMPLES / "library.py").read_text()  # the example connection's library code
LEAF = {"name": "1990s", "fingerprint": "x"}

# The baseline: a preview without a warm server (fresh interpreter, classic local SparkSession);
# the library is made importable as `library`, as the engine does.
COLD = (
    f"""
import sys, types
library = types.ModuleType("library")
exec({LIBRARY!r}, library.__dict__)
sys.modules["library"] = library
"""
    + CODE
    + """
from pyspark.sql import SparkSession
spark = (
    SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
)
frame = read_spark_dataframe(spark, {}, {"name": "1990s"})
table = frame.limit(100).toArrow()
print(table.num_rows, frame.count())
spark.stop()
"""
)


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def warm_preview(sandbox: Sandbox, url: str, pool: SessionPool | None) -> float:
    """Time one preview: in a leased pooled session, or in a new session when `pool` is None."""
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if pool is not None:
            url = stack.enter_context(pool.lease(url)).url
        request = SandboxRequest(
            action="read",
            code=CODE,
            library_code=LIBRARY,
            interface="spark",
            object=LEAF,
            spark_remote=url,
            tenant="connection-bench",
        )
        result = run_action(request, sandbox=sandbox)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"warm preview failed: {result.error}")
    TIMINGS.append(getattr(result, "timings", {}))
    return elapsed


TIMINGS: list[dict] = []
PACE_S = 0.5  # between warm previews, as a user clicks: the next spare is ready


def cold_preview() -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COLD], capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or not done.stdout.strip().startswith("5 5"):
        raise SystemExit(f"cold preview failed: {done.stderr[-2000:]}")
    return elapsed


def sandbox_memory_mb(sandbox: Sandbox) -> float:
    """Resident memory of the sandbox's fork server and everything below it."""
    from bench_site import memory_mb

    forkserver = sandbox._forkserver
    return memory_mb(forkserver.process.pid) if forkserver and forkserver.process else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="warm previews timed")
    parser.add_argument("--cold", type=int, default=3, help="cold previews timed")
    parser.add_argument("--memory-previews", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-spark-") as directory:
        server = LocalSparkServer(directory)
        pool = SessionPool(Path(directory) / "sessions", 4)
        sandbox = Sandbox()
        try:
            started = time.perf_counter()
            url = server.remote()
            up = time.perf_counter() - started
            print(f"server start        {up:6.2f} s")
            print(f"server JVM pid {server.jvm_pid()}, RSS {server.memory_mb():.0f} MB after start")
            print(f"server isolation: {server.isolation}")
            first = warm_preview(sandbox, url, pool)
            print(f"first preview       {first:6.2f} s")
            verdict = "ok" if up + first <= 15 else "MISSED"
            print(f"start to first preview {up + first:6.2f} s   target <= 15 s: {verdict}")
            for _ in range(3):  # the sandbox learns what these previews import
                time.sleep(PACE_S)
                warm_preview(sandbox, url, pool)
            TIMINGS.clear()
            warm = []
            for _ in range(args.n):
                time.sleep(PACE_S)
                warm.append(warm_preview(sandbox, url, pool))
            cold = [cold_preview() for _ in range(args.cold)]
            warm_p50, cold_p50 = statistics.median(warm), statistics.median(cold)
            print(f"warm  p50 {warm_p50:6.3f} s  p90 {percentile(warm, 0.9):6.3f} s  (n={args.n})")
            print(f"cold  p50 {cold_p50:6.3f} s  (n={args.cold})")
            ratio = cold_p50 / warm_p50
            verdict = "ok" if warm_p50 <= 0.4 and ratio >= 10 else "MISSED"
            print(f"ratio {ratio:5.1f}x   target: warm <= 0.4 s, >= 10x: {verdict}")
            for key in ("execute_ms", "connector_ms", "reply_ms", "round_trip_ms"):
                values = [t[key] for t in TIMINGS if key in t]
                print(f"  sandbox {key:<16}{statistics.median(values):8.1f} ms (p50)")
            memory = sandbox_memory_mb(sandbox)
            print(f"sandbox memory (fork server and spares, PSS) {memory:.0f} MB")
            for label, session_pool in (("pooled sessions", pool), ("a session each", None)):
                before = server.memory_mb()
                for _ in range(args.memory_previews):
                    warm_preview(sandbox, url, session_pool)
                after = server.memory_mb()
                print(
                    f"server RSS {before:6.0f} MB -> {after:6.0f} MB after "
                    f"{args.memory_previews} more previews ({label})"
                )
        finally:
            sandbox.stop()
            server.stop()


if __name__ == "__main__":
    main()
