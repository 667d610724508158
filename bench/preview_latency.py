"""Compare a `read` preview through the warm sandbox with a fresh Python process per preview.

Usage: .venv/bin/python bench/preview_latency.py [--n 30]

The warm sandbox is measured twice: paced (a preview every PACE_S, as a user clicks: the fork
server's spare supervisor is ready) and back to back (each preview also waits for the spare
that replaces the last one to warm up). Prints where the paced preview's time goes, from the
sandbox's own timings. Also lists 100,000 leaves (1,000 prefixes x 100) through the sandbox.
Targets: warm p50 <= 20 ms, >= 20x faster than the fresh-interpreter baseline, listing <= 1.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_site

from connector_engine.protocol import Limits, SandboxRequest
from connector_engine.sandbox import Sandbox, run_action

CONNECTOR = """
import pandas as pd

def list_objects(context, metadata):
    yield {"name": "orders.csv", "fingerprint": "v1"}

def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"id": range(100), "name": [f"row {i}" for i in range(100)]})
"""

# The baseline: what a preview costs without a warm worker (fresh interpreter, same code).
BASELINE = (
    CONNECTOR
    + """
import pyarrow as pa
leaf = next(list_objects({}, None))
table = pa.Table.from_pandas(read_pandas_dataframe({}, leaf), preserve_index=False)
print(table.num_rows)
"""
)

LISTING = """
def list_objects(context, metadata):
    if not metadata:
        for p in range(1000):
            yield {"name": f"prefix-{p:04d}", "fingerprint": "", "is_prefix": True}
    else:
        for i in range(100):
            yield {"name": f"{metadata['name']}/leaf-{i:03d}", "fingerprint": f"f{i}"}

def read_pandas_dataframe(context, metadata):
    raise NotImplementedError
"""


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


PACE_S = 0.1


def time_warm(sandbox: Sandbox, n: int, pace_s: float = 0.0) -> tuple[list[float], list[dict]]:
    """Return milliseconds per warm sandbox preview, and each preview's sandbox timings."""
    request = SandboxRequest(action="read", code=CONNECTOR)
    assert run_action(request, sandbox=sandbox).ok  # start the worker outside the timing
    samples, timings = [], []
    for _ in range(n):
        time.sleep(pace_s)
        started = time.perf_counter()
        result = run_action(request, sandbox=sandbox)
        samples.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.error
        timings.append(getattr(result, "timings", {}))
    return samples, timings


def print_breakdown(timings: list[dict]) -> None:
    """Median of each phase the sandbox reports (ms)."""
    phases = {
        "namespaces_ms": "enter namespaces (ahead of the request)",
        "fork_ms": "fork the connector process (ahead)",
        "request_ms": "connector process: read the request",
        "execute_ms": "connector process: run the action",
        "arrow_ms": "connector process: encode Arrow",
        "connector_ms": "supervisor: request in to result out",
        "reply_ms": "supervisor: interpret and mask",
        "round_trip_ms": "client: round trip",
    }
    print(f"{'where the paced preview goes':<44}{'p50 ms':>10}")
    for key, label in phases.items():
        values = [t[key] for t in timings if key in t]
        if values:
            print(f"  {label:<42}{statistics.median(values):>10.2f}")


def time_fresh(n: int) -> list[float]:
    """Return milliseconds per fresh-interpreter preview."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", BASELINE], check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def time_listing(sandbox: Sandbox) -> tuple[float, dict]:
    """Return seconds to list 100,000 leaves and the listing's summary."""
    limits = Limits(max_objects=200_000, timeout_s=60)
    request = SandboxRequest(action="list", code=LISTING, limits=limits)
    started = time.perf_counter()
    result = run_action(request, sandbox=sandbox)
    elapsed = time.perf_counter() - started
    assert result.ok, result.error
    summary = {key: result.result.get(key) for key in ("leaf_count", "truncated")}
    return elapsed, summary


HTTP_CONNECTOR = CONNECTOR


def time_http(n: int, pace_s: float) -> tuple[list[float], list[dict], float]:
    """Milliseconds per `read` preview through the real server (a logged-in session's POST,
    the Run rows, the sandbox, the HTML), each request's Server-Timing phases, and the server's
    memory (web processes, worker and their warm sandboxes, idle) afterwards."""
    site = bench_site.Site()
    worker = None
    try:
        slug = site.connector("Bench HTTP", HTTP_CONNECTOR)
        site.start()
        worker = site.start_worker()
        client = site.client()
        path = f"/runs/connector/{slug}/preview/read/"
        fields = {"code": HTTP_CONNECTOR, "interface": "pandas", "limit": "100"}
        for _ in range(3):  # the sandbox starts on the first preview
            response, body = client.request("POST", path, fields)
            assert response.status == 200, body[:500]
        samples, phases = [], []
        for _ in range(n):
            time.sleep(pace_s)
            started = time.perf_counter()
            response, body = client.request("POST", path, fields)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status == 200 and b"row 99" in body, body[:500]
            phases.append(bench_site.server_timing(response.getheader("Server-Timing")))
        time.sleep(2)  # idle: the spares are forked
        memory = bench_site.memory_mb(site.server.pid) + bench_site.memory_mb(worker.pid)
        return samples, phases, memory
    finally:
        if worker is not None:
            site.stop_process(worker)
        site.stop()


def print_http_breakdown(phases: list[dict]) -> None:
    print(f"{'where the HTTP preview goes (Server-Timing)':<44}{'p50 ms':>10}")
    for key in phases[0]:
        values = [p[key] for p in phases if key in p]
        print(f"  {key:<42}{statistics.median(values):>10.2f}")


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30, help="previews per variant")
    args = parser.parse_args()
    sandbox = Sandbox()
    try:
        warm, timings = time_warm(sandbox, args.n, PACE_S)
        back_to_back, _ = time_warm(sandbox, args.n)
        isolation = run_action(SandboxRequest(action="context", code=CONNECTOR), sandbox=sandbox)
        listing_s, listing = time_listing(sandbox)
    finally:
        sandbox.stop()
    http, http_phases, http_memory = time_http(args.n, PACE_S)
    fresh = time_fresh(args.n)
    warm_p50, fresh_p50 = statistics.median(warm), statistics.median(fresh)
    print(f"read preview, n={args.n}   isolation: {isolation.isolation}")
    print(f"{'variant':<28}{'p50 ms':>10}{'p95 ms':>10}")
    print(f"{'warm sandbox, paced':<28}{warm_p50:>10.1f}{percentile(warm, 0.95):>10.1f}")
    b2b_p50 = statistics.median(back_to_back)
    b2b_p95 = percentile(back_to_back, 0.95)
    print(f"{'warm sandbox, back to back':<28}{b2b_p50:>10.1f}{b2b_p95:>10.1f}")
    http_p50 = statistics.median(http)
    print(f"{'HTTP (session, POST, HTML)':<28}{http_p50:>10.1f}{percentile(http, 0.95):>10.1f}")
    print(f"{'fresh python per preview':<28}{fresh_p50:>10.1f}{percentile(fresh, 0.95):>10.1f}")
    print(f"{'ratio (fresh / warm, p50)':<28}{fresh_p50 / warm_p50:>10.1f}x")
    print(f"{'ratio (fresh / HTTP, p50)':<28}{fresh_p50 / http_p50:>10.1f}x")
    print(
        f"targets: warm p50 <= 20 ms ({'ok' if warm_p50 <= 20 else 'MISSED'}), "
        f">= 20x ({'ok' if fresh_p50 / warm_p50 >= 20 else 'MISSED'})"
    )
    print(
        f"targets: HTTP p50 <= 30 ms ({'ok' if http_p50 <= 30 else 'MISSED'}), "
        f">= 20x ({'ok' if fresh_p50 / http_p50 >= 20 else 'MISSED'})"
    )
    print()
    print_breakdown(timings)
    print()
    print_http_breakdown(http_phases)
    verdict = "ok" if http_memory <= 400 else "MISSED"
    print(
        f"memory, idle: web ({bench_site.WORKERS} gunicorn workers), worker and their warm "
        f"sandboxes {http_memory:.0f} MB (PSS)  target <= 400 MB: {verdict}"
    )
    print()
    verdict = "ok" if listing_s <= 1.5 else "MISSED"
    print(
        f"list 100,000 leaves (1,000 prefixes x 100): {listing_s:.2f} s "
        f"(target <= 1.5 s: {verdict}); {listing}"
    )


if __name__ == "__main__":
    main()
