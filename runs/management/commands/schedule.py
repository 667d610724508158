"""Set, turn off or list connectors' ingest schedules; the worker queues the ingests when due."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from connections import audit
from connections.models import AuditVia, Connector
from runs.models import Schedule
from runs.schedules import ScheduleError, schedule_json, schedule_off, schedule_set, when

EXIT_USAGE = 2
COMMAND = "manage.py schedule"  # who the audit log says changed a schedule


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_USAGE)


class Command(BaseCommand):
    help = (
        "Schedule a connector's ingests: --cron EXPR (five fields, in --timezone) or --every "
        "30s/15m/2h/1d; --off turns the schedule off. --list [--json] shows every schedule with "
        "its next run. The worker (manage.py worker) queues due ingests, never a second one while "
        "one is queued or running, and one catch-up run after downtime. Exit status 2: bad usage."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", nargs="?", help="the connector's slug")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--cron", metavar="EXPR", help='a cron expression, e.g. "0 6 * * *"')
        action.add_argument("--every", metavar="INTERVAL", help="an interval: 30s, 15m, 2h, 1d")
        action.add_argument("--off", action="store_true", help="turn the schedule off")
        action.add_argument("--list", action="store_true", help="list every schedule")
        parser.add_argument(
            "--timezone", metavar="TZ", help="the cron expression's timezone (default UTC)"
        )
        parser.add_argument("--json", action="store_true", help="with --list: print JSON")

    def handle(self, *args, **options) -> None:
        slug, cron, every, off = options["slug"], options["cron"], options["every"], options["off"]
        timezone, as_json = options["timezone"], options["json"]
        if options["list"]:
            if slug:
                raise usage_error("--list takes no slug.")
            self.list_schedules(as_json=as_json)
            return
        if as_json:
            raise usage_error("--json goes with --list.")
        if not slug:
            raise usage_error("Give a connector slug (or --list).")
        if cron is None and every is None and not off:
            raise usage_error("Give --cron EXPR, --every INTERVAL or --off.")
        connector = Connector.objects.filter(slug=slug).first()
        if connector is None:
            raise usage_error(f"No connector with slug {slug!r}.")
        if off:
            if timezone:
                raise usage_error("--timezone goes with --cron or --every.")
            with audit.acting(via=AuditVia.CLI, name=COMMAND):
                schedule = schedule_off(connector=connector)
            if schedule is None:
                self.stdout.write(f"{slug} has no schedule.")
            else:
                self.stdout.write(f"Schedule of {slug} is off.")
            return
        try:
            with audit.acting(via=AuditVia.CLI, name=COMMAND):
                schedule = schedule_set(connector=connector, cron=cron, every=every, tz=timezone)
        except ScheduleError as error:
            raise usage_error(str(error)) from None
        self.stdout.write(
            f"Scheduled {slug}: {schedule.describe()} ({schedule.timezone}); "
            f"next run {when(schedule.next_run)}."
        )

    def list_schedules(self, *, as_json: bool) -> None:
        schedules = Schedule.objects.select_related("connector", "last_run")
        if as_json:
            self.stdout.write(json.dumps([schedule_json(s) for s in schedules], indent=2))
            return
        if not schedules:
            self.stdout.write("No schedules.")
            return
        for schedule in schedules:
            row = schedule_json(schedule)
            state = "" if schedule.enabled else " [off]"
            last = schedule.last_run
            last_text = f"#{last.pk} {last.status}" if last else "-"
            self.stdout.write(
                f"{row['slug']}\t{row['schedule']} ({row['timezone']}){state}\t"
                f"next_run {row['next_run'] or '-'}\tlast_run {last_text}"
            )
