"""Ingest a connector from the command line: queue it, run it here, plan it, or cancel it.

While a run executes here (--wait), progress lines go to stderr: when the numbers change (once
a second at most) and every PROGRESS_EVERY_S seconds; stdout keeps only the summary (one JSON
object with --json).

--wait creates the run and claims it here at once. Should this process die before the claim, a
worker gives the queued run a task and runs it (runs.ingest.recovery), or, with no worker, the
next `ingest --wait` with the same options takes it over; should it die while running it (not
Ctrl-C, which cancels a run not yet begun and ends a running one "interrupted"), a worker goes
on from what was committed. Should a worker claim it first, this command waits for the worker
to finish it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from connections.models import Connector
from connector_engine.protocol import ErrorType, IngestEngine
from runs import selectors, tasks
from runs.ingest import recovery, services
from runs.models import Run, RunStatus

# Exit statuses: the run succeeded (or was queued / cancelled) / the run failed / bad usage.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_LISTED_NAMES = 50
PROGRESS_EVERY_S = 5.0  # a progress line at least this often while a run executes here
PROGRESS_MIN_S = 1.0  # and at most this often, when its numbers change
POLL_S = 0.5  # how often --wait looks at a run another process executes
ABANDONED_HINT = (
    "it was abandoned (no worker has it) with other options than these: cancel it with "
    "--cancel, or give the same options to run it here"
)


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_USAGE)


class Command(BaseCommand):
    help = (
        "Ingest a saved connector. Without options the run is queued for the worker and its id "
        "printed. --wait runs it in this process (through the same sandbox; no worker needed), "
        "prints progress lines to stderr and a summary; --dry-run lists and prints the plan "
        "without reading anything; --spark reads the partitions as one Spark job (pandas and "
        "bytes connectors); --allow-deletes lets a plan delete all or most committed partitions "
        "(the deletion guard stops it otherwise); --cancel cancels the connector's queued or "
        "running ingest. Exit status 0: succeeded (or queued, or cancelled); 1: the run failed "
        "or was stopped; 2: bad usage."
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
        parser.add_argument(
            "--allow-deletes",
            action="store_true",
            help="delete vanished partitions even when they are all or most of the committed ones",
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
        allow_deletes = options["allow_deletes"]
        try:
            if options["wait"] or options["dry_run"]:
                if options["dry_run"]:
                    run = services.ingest_create(connector=connector, dry_run=True, engine=engine)
                else:
                    run = self.create_or_adopt(connector, engine, allow_deletes)
                progress = ProgressLines(self.stderr.write) if options["wait"] else None
                try:
                    run = services.ingest_execute(run_id=run.pk, on_progress=progress)
                    if not run.is_finished:  # a worker claimed it first (see the docstring)
                        run = wait_until_finished(run, progress)
                except KeyboardInterrupt:
                    run.refresh_from_db()
                    if run.status == RunStatus.QUEUED:  # stopped before it began: not for later
                        services.ingest_cancel(run=run)
                    self.stderr.write(f"Interrupted: ingest #{run.pk} is {run.status}.")
                    raise SystemExit(EXIT_FAILED) from None
                if progress is not None:
                    progress(run, last=True)
            else:
                run = tasks.ingest_enqueue(
                    connector=connector, engine=engine, allow_deletes=allow_deletes
                )
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

    def create_or_adopt(self, connector: Connector, engine: str, allow_deletes: bool) -> Run:
        """Create the run to execute here; or take over an abandoned queued one with the same
        options (its creator died before running it, and no worker has it)."""
        try:
            return services.ingest_create(
                connector=connector, engine=engine, allow_deletes=allow_deletes
            )
        except services.IngestAlreadyActive as exc:
            run = exc.run
            if not recovery.ingest_abandoned(run, queue=tasks.INGEST_QUEUE):
                raise
            if not _same_options(run, engine, allow_deletes):
                raise services.IngestAlreadyActive(run, hint=ABANDONED_HINT) from None
            self.stderr.write(
                f"Ingest #{run.pk} was queued, then abandoned (no worker has it): running it here."
            )
            return run

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


class ProgressLines:
    """Write an executing run's progress, one line at a time (see the module docstring)."""

    def __init__(
        self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.write = write
        self.clock = clock
        self.written_at = clock()
        self.numbers: tuple[Any, ...] | None = None

    def __call__(self, run: Run, *, last: bool = False) -> None:
        progress = selectors.run_progress(run)
        numbers = tuple(progress[key] for key in ("planned", "total", "done", "failed", "rows"))
        since = self.clock() - self.written_at
        changed = numbers != self.numbers and since >= PROGRESS_MIN_S
        if last or changed or since >= PROGRESS_EVERY_S:
            self.write(progress_line(progress))
            self.written_at, self.numbers = self.clock(), numbers


def _same_options(run: Run, engine: str, allow_deletes: bool) -> bool:
    return run.engine == engine and bool(run.parameters.get("allow_deletes")) == allow_deletes


def wait_until_finished(run: Run, progress: ProgressLines | None) -> Run:
    """Wait for a run another process executes to finish, reporting its progress."""
    while not run.is_finished:
        time.sleep(POLL_S)
        run.refresh_from_db()
        if progress is not None:
            progress(run)
    return run


def progress_line(progress: dict[str, Any]) -> str:
    """One line of an executing run's progress: partitions done of total, rows, elapsed time."""
    head, elapsed = f"ingest #{progress['run_id']}:", f"{progress['elapsed_s']:.1f} s elapsed"
    if not progress["planned"]:
        return f"{head} listing the source, {elapsed}"
    failed = f" ({progress['failed']} failed)" if progress["failed"] else ""
    return (
        f"{head} {progress['done']} of {progress['total']} partitions done{failed}, "
        f"{progress['rows']:,} rows, {elapsed}"
    )


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
        "deletion_guard": result.get("deletion_guard"),
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
        reasons = ", ".join(f"{count} {reason}" for reason, count in plan["read_reasons"].items())
        lines.append(
            f"plan: read {counts['read']}, skip {counts['skip']}, delete {counts['delete']}"
            + (f" (read: {reasons})" if reasons else "")
        )
        if summary["deletion_guard"]:
            lines.append(f"Deletion guard: {summary['deletion_guard']['message']}")
        if summary["dry_run"]:
            omitted = plan.get("names_omitted", {})
            lines += _names("read", plan["read"], omitted.get("read", 0))
            lines += _names("skip", plan["skip"], omitted.get("skip", 0))
            lines += _names("delete", plan["delete"], omitted.get("delete", 0))
    error = summary["error"]
    stopped = error is not None and error["type"] == ErrorType.DELETION_GUARD
    if not summary["dry_run"] and plan and not stopped:
        progress = summary["progress"]
        lines.append(
            f"done {progress['done']} of {progress['total']} "
            f"({progress['failed']} failed), {progress['rows']:,} rows, {progress['bytes']:,} bytes"
        )
    if error:
        lines.append(f"{error['type']}: {error['message']}")
        listing = summary["listing"] or {}
        for problem in listing.get("problems", [])[:MAX_LISTED_NAMES]:
            lines.append(f"  {problem['message']}: {json.dumps(problem['object'], default=str)}")
    return "\n".join(lines)
