"""Delete finished runs past their retention (the worker also does it daily)."""

from __future__ import annotations

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Count

from runs.models import RunKind
from runs.retention import prunable_runs, runs_prune


def days(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError("must be zero or more days")
    return value


class Command(BaseCommand):
    help = (
        "Delete finished runs (previews and ingests) older than RUN_RETENTION_DAYS, or "
        "--older-than DAYS. Queued and running runs, and ingests that own committed partitions, "
        "are kept. --dry-run prints what would be removed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=days,
            metavar="DAYS",
            help="remove runs finished more than DAYS ago (default: RUN_RETENTION_DAYS)",
        )
        parser.add_argument("--dry-run", action="store_true", help="remove nothing")

    def handle(self, *, older_than: float | None, dry_run: bool, **options) -> None:
        if older_than is None and not settings.RUN_RETENTION_DAYS:
            self.stdout.write("RUN_RETENTION_DAYS is 0: runs are kept; nothing removed.")
            return
        age = settings.RUN_RETENTION_DAYS if older_than is None else older_than
        kinds = (
            prunable_runs(older_than_days=older_than)
            .values("kind")
            .annotate(count=Count("pk"))
            .values_list("kind", "count")
        )
        counts = dict(kinds)
        ingests = counts.pop(RunKind.INGEST, 0)
        previews = sum(counts.values())
        if dry_run:
            total = previews + ingests
            verb = "Would remove"
        else:
            total = runs_prune(older_than_days=older_than)
            verb = "Removed"
        detail = f"{plural(previews, 'preview')}, {plural(ingests, 'ingest')}" if total else ""
        self.stdout.write(
            f"{verb} {plural(total, 'run')} finished more than {age:g} days ago"
            + (f": {detail}." if detail else ".")
        )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
