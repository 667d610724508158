"""An import-heavy source: a warm preview and a full ingest of an S3 API through boto3, each
beside the same work done by a plain single-process Python script.

Usage: .venv/bin/python bench/s3_ingest.py [--n 12]

moto's S3 server runs on loopback (its own virtualenv, as in the tests) with 12 Parquet objects
of 28,000 rows. The connector imports boto3 (installed in its connection's environment: the
package index is needed the first time), loads botocore's models in warm_up() and builds a
client in context(). The previews go
through the real server (a logged-in session's POST), one every PACE_S as a user clicks; the
ingest through the API to `manage.py worker`, after the objects changed, so every partition is
read again by warm sandboxes. The plain script calls the same connector's functions (context,
list_objects, read_pandas_dataframe) in one process and writes each frame as Parquet. Prints
the memory (PSS) of the web processes, the worker
and their sandboxes. Targets: warm preview p50 <= 100 ms; ingest >= 80 % of the plain script's
rows per second.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_site

from tests.s3_server import MotoServer, S3Bucket

BOTO3 = "boto3==1.44.18"
BUCKET, REGION = "bench", "eu-west-1"
OBJECTS, ROWS = 12, 28_000
PACE_S = 1.5
CODE = """
import io
import json

import boto3
import pyarrow.parquet as pq


def warm_up():
    # Without credentials, once per process, ahead of the run in the connection's warm worker:
    # botocore's S3 model, endpoint rules and paginators are loaded here, not in context().
    boto3.client("s3", region_name="eu-west-1").get_paginator("list_objects_v2")


def context(credentials):
    fields = json.loads(credentials)
    client = boto3.client(
        "s3",
        endpoint_url=fields["endpoint_url"],
        region_name=fields["region"],
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    return {"s3": client, "bucket": fields["bucket"]}


def list_objects(context, metadata):
    pages = context["s3"].get_paginator("list_objects_v2").paginate(Bucket=context["bucket"])
    for page in pages:
        for item in page.get("Contents", []):
            yield {"name": item["Key"], "fingerprint": item["ETag"]}


def read_pandas_dataframe(context, metadata):
    body = context["s3"].get_object(Bucket=context["bucket"], Key=metadata["name"])["Body"]
    return pq.read_table(io.BytesIO(body.read())).to_pandas()
"""
# The same connector's functions called in one process, each frame written as Parquet: what
# the ingest does, without the sandbox, the database or the plan.
PLAIN = """
import json, os, sys, time
started = time.perf_counter()
import pyarrow as pa
import pyarrow.parquet as pq
code, credentials, out = sys.argv[1:4]
connector = {}
exec(code, connector)
connector["warm_up"]()
context = connector["context"](credentials)
rows = 0
for leaf in connector["list_objects"](context, None):
    frame = connector["read_pandas_dataframe"](context, leaf)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, os.path.join(out, leaf["name"].replace("/", "_")))
    rows += table.num_rows
print(rows, time.perf_counter() - started)
"""


def fill(bucket: S3Bucket, version: int) -> None:
    for number in range(OBJECTS):
        table = pa.table(
            {
                "id": pa.array(range(ROWS), pa.int64()),
                "name": [f"item {version}-{number}-{i}" for i in range(ROWS)],
                "value": pa.array([i * 0.5 for i in range(ROWS)], pa.float64()),
            }
        )
        sink = io.BytesIO()
        pq.write_table(table, sink)
        bucket.put(f"part-{number:02d}.parquet", sink.getvalue())


def environment_site_packages(site: bench_site.Site, slug: str) -> str:
    """Where the connection's environment (boto3) is, for the plain script."""
    return (
        site.python(
            "from connections.models import Connector\n"
            "from environments.services import connector_environment_current\n"
            f"c = Connector.objects.get(slug={slug!r})\n"
            "print(':'.join(connector_environment_current(connector=c, packages=None)"
            ".ready.python_paths))\n"
        )
        .strip()
        .splitlines()[-1]
    )


def plain_script(site_packages: str, credentials: str) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as out:
        done = subprocess.run(
            [sys.executable, "-c", PLAIN, CODE, credentials, out],
            env={"PYTHONPATH": site_packages, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the plain script failed ({site_packages}): {done.stderr[-2000:]}")
    rows, seconds = done.stdout.split()
    return int(rows), float(seconds)


def api(client: bench_site.Client, token: str, method: str, path: str, body: dict | None = None):
    connection = client.connection
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=json.dumps(body or {}), headers=headers)
    response = connection.getresponse()
    return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=12, help="previews")
    args = parser.parse_args()
    moto_dir = Path(tempfile.mkdtemp(prefix="cs-bench-moto-", dir="/var/tmp"))
    moto = MotoServer(moto_dir).start()
    site = bench_site.Site()
    worker = None
    try:
        bucket = S3Bucket(moto.endpoint, BUCKET, REGION)
        bucket.create()
        fill(bucket, 1)
        fields = {"endpoint_url": moto.endpoint, "region": REGION, "bucket": BUCKET}
        slug = site.connector("S3 bench", CODE, packages=BOTO3, credentials=json.dumps(fields))
        print("building the environment (boto3) ...", file=sys.stderr)
        site.manage("preview", slug, "--action", "list", "--json")
        site.start()
        worker = site.start_worker()
        client = site.client()
        path = f"/runs/connector/{slug}/preview/read/"
        preview = {"code": CODE, "interface": "pandas", "limit": "100"}
        samples, phases = [], []
        for number in range(args.n + 2):
            time.sleep(PACE_S)
            started = time.perf_counter()
            response, body = client.request("POST", path, preview)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status == 200 and b"item 1-" in body, body[:800]
            if number >= 2:  # the first ones teach the sandbox what this connection imports
                samples.append(elapsed)
                phases.append(bench_site.server_timing(response.getheader("Server-Timing")))
        token = site.manage("api_token", "create", bench_site.USER).strip().splitlines()[-1]
        first = api(client, token, "POST", f"/api/v1/connectors/{slug}/ingests")
        wait_for(client, token, first["id"])
        fill(bucket, 2)  # every object changes: the next ingest reads all of them again
        run = api(client, token, "POST", f"/api/v1/connectors/{slug}/ingests")
        run = wait_for(client, token, run["id"])
        assert run["status"] == "succeeded", run
        ingest_s = run["duration_ms"] / 1000
        memory = {
            "web": bench_site.memory_mb(site.server.pid),
            "worker": bench_site.memory_mb(worker.pid),
        }
        site_packages = environment_site_packages(site, slug)
        plain_rows, plain_s = plain_script(site_packages, json.dumps(fields))
    finally:
        if worker is not None:
            site.stop_process(worker)
        site.stop()
        moto.stop()
        shutil.rmtree(moto_dir, ignore_errors=True)
    p50 = statistics.median(samples)
    print(f"S3 API on loopback: {OBJECTS} Parquet objects x {ROWS:,} rows; boto3 connector")
    print(f"warm preview through HTTP, one every {PACE_S} s: p50 {p50:.0f} ms", end="")
    print(f" (p95 {sorted(samples)[int(len(samples) * 0.95) - 1]:.0f} ms)", end="")
    print(f"  target <= 100 ms: {'ok' if p50 <= 100 else 'MISSED'}")
    for key in ("admit", "sandbox", "sandbox-execute", "record", "render"):
        values = [p[key] for p in phases if key in p]
        if values:
            print(f"  {key:<28}{statistics.median(values):>8.1f} ms")
    rows = run["rows_written"]
    ingest_rate, plain_rate = rows / ingest_s, plain_rows / plain_s
    print(f"{'variant':<34}{'rows':>10}{'seconds':>10}{'rows/s':>12}")
    for label, count, seconds, rate in (
        ("ingest (worker, warm sandboxes)", rows, ingest_s, ingest_rate),
        ("plain script, one process", plain_rows, plain_s, plain_rate),
    ):
        print(f"{label:<34}{count:>10,}{seconds:>10.2f}{rate:>12,.0f}")
    phases = run["result"].get("timings_ms") or []
    print("  ingest: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in phases))
    ratio = ingest_rate / plain_rate
    print(f"ingest / plain: {ratio:.0%}  target >= 80 %: {'ok' if ratio >= 0.8 else 'MISSED'}")
    web_mb, worker_mb = memory["web"], memory["worker"]
    print(f"memory (PSS, with their sandboxes): web {web_mb:.0f} MB, worker {worker_mb:.0f} MB")


def wait_for(client: bench_site.Client, token: str, run_id: int) -> dict:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        run = api(client, token, "GET", f"/api/v1/ingests/{run_id}")
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.2)
    raise RuntimeError(f"ingest {run_id} did not finish")


if __name__ == "__main__":
    main()
