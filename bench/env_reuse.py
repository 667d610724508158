"""A connector with one extra package, previewed twice: first build time and reuse overhead.

Usage: .venv/bin/python bench/env_reuse.py [--n 30] [--package NAME]

Without --package the extra package is a tiny wheel built here and uploaded to the connection,
and pip runs offline (--no-index). With --package NAME, pip installs NAME from the server's
configured index instead (network or mirror).

Runs in a throw-away DATA_DIR. Prints the first preview's time (the environment build included)
and, for later previews, the environment overhead (resolving the requirement set, hashing it,
finding the ready environment and leasing its warm worker) beside the same overhead for a
connector without packages, and the whole preview's time for both. Target: overhead <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODE = """
import pandas as pd
{import_line}

def list_objects(context, metadata):
    yield {{"name": "only", "fingerprint": "v1"}}

def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({{"n": range(100)}})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30, help="timed reuses per variant")
    parser.add_argument("--package", help="a package from the configured index (else offline)")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="cs-bench-env-", dir="/var/tmp")
    os.environ["DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connectors_site.settings")
    if not args.package:
        os.environ["ENVIRONMENT_PIP_ARGS"] = "--isolated --no-index"
    import django

    django.setup()
    try:
        run(args)
    finally:
        from connectors_site import engine_config

        engine_config.sandboxes().stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from connections import services
    from connectors_site import engine_config
    from environments.models import Environment
    from environments.services import connector_environment_ensure
    from runs.services import preview_run
    from tests.environments.helpers import upload_wheel

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create(username="bench")
    with_packages = services.connection_create(name="With a package", owner=owner)
    if args.package:
        packages, module = args.package, args.package.replace("-", "_")
    else:
        upload_wheel(with_packages)
        packages, module = "tinypkg", "tinypkg"
    connector = services.connector_create(
        connection=with_packages,
        name="packaged",
        code=CODE.format(import_line=f"import {module}"),
        packages=packages,
    )
    plain = services.connector_create(
        connection=services.connection_create(name="Base", owner=owner),
        name="plain",
        code=CODE.format(import_line=""),
    )

    started = time.perf_counter()
    first = preview_run(connector=connector, action="read")
    first_s = time.perf_counter() - started
    assert first.status == "succeeded", first.error_message
    environment = Environment.objects.get(key=first.parameters["environment"])
    assert preview_run(connector=plain, action="read").status == "succeeded"  # warm the base

    def overhead_ms(target) -> float:
        started = time.perf_counter()
        resolved = connector_environment_ensure(connector=target)
        if resolved.ready is not None:
            with engine_config.sandboxes().lease(resolved.ready):
                pass
        return (time.perf_counter() - started) * 1000

    def preview_ms(target) -> float:
        started = time.perf_counter()
        run = preview_run(connector=target, action="read")
        assert run.status == "succeeded", run.error_message
        return (time.perf_counter() - started) * 1000

    rows = {}
    for name, target in (("with 1 package", connector), ("no packages (base)", plain)):
        overhead = statistics.median(overhead_ms(target) for _ in range(args.n))
        whole = statistics.median(preview_ms(target) for _ in range(args.n))
        rows[name] = (overhead, whole)

    print(
        f"package: {packages} ({'configured index' if args.package else 'uploaded wheel, offline'})"
    )
    print(
        f"first preview (environment built): {first_s:.2f} s; "
        f"pip build {environment.build_seconds:.2f} s; installed {environment.packages}; "
        f"{environment.size_bytes / 1024:.0f} KiB"
    )
    print(f"reuse, n={args.n}, medians")
    print(f"{'variant':<22}{'env overhead ms':>17}{'whole preview ms':>18}")
    for name, (overhead, whole) in rows.items():
        print(f"{name:<22}{overhead:>17.2f}{whole:>18.1f}")
    packaged, base = rows["with 1 package"], rows["no packages (base)"]
    ratios = (packaged[0] / base[0], packaged[1] / base[1])
    print(f"{'ratio (package/base)':<22}{ratios[0]:>16.1f}x{ratios[1]:>17.2f}x")
    verdict = "ok" if packaged[0] <= 50 else "MISSED"
    print(f"target: environment overhead on reuse <= 50 ms ({verdict})")


if __name__ == "__main__":
    main()
