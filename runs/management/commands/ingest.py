"""Ingest a connector from the command line: queue it, run it here, plan it, or cancel it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from connections.models import Connector
from connector_engine.protocol import IngestEngine
from runs import selectors, tasks
from runs.ingest import services
from runs.models import Run, RunStatus

# Exit statuses: the run succeeded (or was queued / cancelled) / the run failed / bad usage.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_LISTED_NAMES = 50


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_USAGE)


class Command(BaseCommand):
    help = (
        "Ingest a saved connector. Without options the run is queued for the worker and its id "
        "printed. --wait runs it in this process (through the same sandbox; no worker needed) "
        "and prints a summary; --dry-run lists and prints the plan without reading anything; "
        "--spark reads the partitions as one Spark job (pandas and bytes connectors); "
        "--cancel cancels the connector's queued or running ingest. Exit status 0: succeeded "
        "(or queued, or cancelled); 1: the run failed or was stopped; 2: bad usage."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="the connector's slug")
        parser.add_argument(
            "--dry-run", action="store_true", help="print the plan (read/skip/delete) only"
        )
        parser.add_argument("--wait", action="store_true", help="run it here and wait for the end")
        parser.add_argument(
            "--cancel", action="store_true", help="cancel the connector's active ingest"
        )
        parser.add_argument(
            "--spark",
            action="store_true",
            help="read the partitions as one Spark job and write Parquet through Spark (scale out)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options) -> None:
        if options["cancel"] and (options["dry_run"] or options["wait"]):
            raise usage_error("--cancel cannot be combined with --dry-run or --wait")
        try:
            connector = Connector.objects.select_related("connection").get(slug=options["slug"])
        except Connector.DoesNotExist:
            raise usage_error(f"no connector with slug {options['slug']!r}") from None
        if options["cancel"]:
            return self.cancel(connector, options["json"])
        engine = IngestEngine.SPARK if options["spark"] else IngestEngine.SANDBOX
        try:
            if options["wait"] or options["dry_run"]:
                run = services.ingest_create(
                    connector=connector, dry_run=options["dry_run"], engine=engine
                )
                try:
                    run = services.ingest_execute(run_id=run.pk)
                except KeyboardInterrupt:
                    run.refresh_from_db()
                    self.stderr.write(f"Interrupted: ingest #{run.pk} is {run.status}.")
                    raise SystemExit(EXIT_FAILED) from None
            else:
                run = tasks.ingest_enqueue(connector=connector, engine=engine)
        except services.IngestAlreadyActive as exc:
            self.report_error(str(exc), exc.run, options["json"])
            raise SystemExit(EXIT_FAILED) from None
        except services.InvalidIngestOption as exc:
            raise usage_error(str(exc)) from None
        summary = run_summary(run)
        if options["json"]:
            self.stdout.write(json.dumps(summary, default=str))
        elif run.status == RunStatus.QUEUED:
            self.stdout.write(f"Queued ingest #{run.pk} of {connector.slug}.")
        else:
            self.stdout.write(format_summary(summary))
        if run.status not in (RunStatus.QUEUED, RunStatus.SUCCEEDED):
            raise SystemExit(EXIT_FAILED)

    def cancel(self, connector: Connector, as_json: bool) -> None:
        run = selectors.active_ingest(connector)
        if run is None:
            self.report_error(f"{connector.slug} has no queued or running ingest", None, as_json)
            raise SystemExit(EXIT_FAILED)
        services.ingest_cancel(run=run)
        if as_json:
            self.stdout.write(json.dumps({"ok": True, "run_id": run.pk, "status": run.status}))
        else:
            self.stdout.write(f"Cancelled ingest #{run.pk} ({run.status}).")

    def report_error(self, message: str, run: Run | None, as_json: bool) -> None:
        if as_json:
            payload = {"ok": False, "run_id": run.pk if run else None, "message": message}
            self.stdout.write(json.dumps(payload))
        else:
            self.stderr.write(message)


def run_summary(run: Run) -> dict[str, Any]:
    """The CLI's JSON shape of an ingest run."""
    result = run.result or {}
    return {
        "ok": run.status in (RunStatus.SUCCEEDED, RunStatus.QUEUED),
        "run_id": run.pk,
        "connector": run.connector.slug,
        "status": run.status,
        "dry_run": run.dry_run,
        "engine": run.engine,
        "plan": result.get("plan"),
        "listing": result.get("listing"),
        "progress": selectors.run_progress(run),
        "failed_partitions": result.get("failed_partitions", []),
        "error": run.error,
        "duration_ms": run.duration_ms,
    }


def _names(label: str, names: list[Any], omitted: int) -> list[str]:
    if not names:
        return []
    lines = [f"{label}:"]
    for item in names[:MAX_LISTED_NAMES]:
        if isinstance(item, dict):
            lines.append(f"  {item['name']}  ({item['reason']})")
        else:
            lines.append(f"  {item}")
    more = len(names) - MAX_LISTED_NAMES + omitted
    if more > 0:
        lines.append(f"  ... and {more} more")
    return lines


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable summary of a finished ingest (or dry run)."""
    what = "Dry run" if summary["dry_run"] else "Ingest"
    seconds = (summary["duration_ms"] or 0) / 1000
    lines = [f"{what} #{summary['run_id']} of {summary['connector']}: {summary['status']}"]
    lines[0] += f" in {seconds:.1f} s"
    plan = summary["plan"]
    if plan:
        counts = plan["counts"]
        lines.append(
            f"plan: read {counts['read']}, skip {counts['skip']}, delete {counts['delete']}"
            + (
                " (the connector's code changed: everything is read)"
                if plan["code_changed"]
                else ""
            )
        )
        if summary["dry_run"]:
            omitted = plan.get("names_omitted", {})
            lines += _names("read", plan["read"], omitted.get("read", 0))
            lines += _names("skip", plan["skip"], omitted.get("skip", 0))
            lines += _names("delete", plan["delete"], omitted.get("delete", 0))
    if not summary["dry_run"] and plan:
        progress = summary["progress"]
        lines.append(
            f"done {progress['done']} of {progress['total']} "
            f"({progress['failed']} failed), {progress['rows']:,} rows, {progress['bytes']:,} bytes"
        )
    error = summary["error"]
    if error:
        lines.append(f"{error['type']}: {error['message']}")
        listing = summary["listing"] or {}
        for problem in listing.get("problems", [])[:MAX_LISTED_NAMES]:
            lines.append(f"  {problem['message']}: {json.dumps(problem['object'], default=str)}")
    return "\n".join(lines)
