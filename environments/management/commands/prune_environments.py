"""Remove package environments nobody has used for a while (and leftovers of dead builds)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from environments import services


class Command(BaseCommand):
    help = (
        "Remove package environments unused for --older-than days (default: "
        "ENVIRONMENT_MAX_IDLE_DAYS). The next run that needs one builds it again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            metavar="DAYS",
            help=f"idle age in days (default {settings.ENVIRONMENT_MAX_IDLE_DAYS:g})",
        )

    def handle(self, *, older_than: float | None, verbosity: int, **options) -> None:
        if older_than is not None and older_than < 0:
            self.stderr.write("--older-than must be 0 or more days.")
            raise SystemExit(2)
        removed = services.environments_prune(max_idle_days=older_than)
        if verbosity:
            self.stdout.write(f"Removed {len(removed)} environment(s).")
            for key in removed:
                self.stdout.write(f"  {key}")
