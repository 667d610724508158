"""Compare a `read` preview through the warm sandbox with a fresh Python process per preview.

Usage: .venv/bin/python bench/preview_latency.py [--n 30]

Also lists 100,000 leaves (1,000 prefixes x 100) through the sandbox and prints the time.
Targets: warm p50 <= 50 ms, >= 10x faster than the fresh-interpreter baseline, listing <= 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def time_warm(sandbox: Sandbox, n: int) -> list[float]:
    """Return milliseconds per warm sandbox preview."""
    request = SandboxRequest(action="read", code=CONNECTOR)
    assert run_action(request, sandbox=sandbox).ok  # start the worker outside the timing
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        result = run_action(request, sandbox=sandbox)
        samples.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.error
    return samples


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


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30, help="previews per variant")
    args = parser.parse_args()
    sandbox = Sandbox()
    try:
        warm = time_warm(sandbox, args.n)
        isolation = run_action(SandboxRequest(action="context", code=CONNECTOR), sandbox=sandbox)
        listing_s, listing = time_listing(sandbox)
    finally:
        sandbox.stop()
    fresh = time_fresh(args.n)
    warm_p50, fresh_p50 = statistics.median(warm), statistics.median(fresh)
    print(f"read preview, n={args.n}   isolation: {isolation.isolation}")
    print(f"{'variant':<28}{'p50 ms':>10}{'p95 ms':>10}")
    print(f"{'warm sandbox (fork)':<28}{warm_p50:>10.1f}{percentile(warm, 0.95):>10.1f}")
    print(f"{'fresh python per preview':<28}{fresh_p50:>10.1f}{percentile(fresh, 0.95):>10.1f}")
    print(f"{'ratio (fresh / warm, p50)':<28}{fresh_p50 / warm_p50:>10.1f}x")
    print(
        f"targets: warm p50 <= 50 ms ({'ok' if warm_p50 <= 50 else 'MISSED'}), "
        f">= 10x ({'ok' if fresh_p50 / warm_p50 >= 10 else 'MISSED'})"
    )
    print()
    verdict = "ok" if listing_s <= 3 else "MISSED"
    print(
        f"list 100,000 leaves (1,000 prefixes x 100): {listing_s:.2f} s "
        f"(target <= 3 s: {verdict}); {listing}"
    )


if __name__ == "__main__":
    main()
