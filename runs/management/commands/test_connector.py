"""Run a connector's tests (its test_* functions) in the sandbox, recorded as a run of kind
"test"."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from connections.models import Connector
from environments.services import connector_environment_current, connector_environment_ensure
from runs import services
from runs.management.commands.preview import EXIT_CODE_FAILED, usage_error

MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


class Command(BaseCommand):
    help = (
        "Run a saved connector's tests: its functions named test_*, called with the fixtures "
        "they ask for by name (credentials, context, objects, spark). Exit status 0: all "
        "passed; 1: any failed (or the run did); 2: bad usage."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="a saved connector's slug")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--timeout", type=float, help="seconds before the run is stopped")
        parser.add_argument(
            "--max-objects", type=int, help="stop the `objects` fixture's listing after this many"
        )

    def handle(self, *args, **options) -> None:
        for name in ("timeout", "max_objects"):
            if options[name] is not None and options[name] <= 0:
                raise usage_error(f"--{name.replace('_', '-')} must be positive")
        try:
            connector = Connector.objects.select_related("connection").get(slug=options["slug"])
        except Connector.DoesNotExist:
            raise usage_error(f"no connector with slug {options['slug']!r}") from None
        if connector_environment_current(connector=connector, packages=None).building:
            self.stderr.write("Building the package environment (once: later runs reuse it)")
            connector_environment_ensure(connector=connector, packages=None)
        run = services.connector_tests_run(
            connector=connector, max_objects=options["max_objects"], timeout_s=options["timeout"]
        )
        outcome = run.tests_json()
        if options["json"]:
            self.stdout.write(json.dumps(outcome, default=str))
        else:
            self.stdout.write(format_tests(outcome))
        if not outcome["ok"]:
            raise SystemExit(EXIT_CODE_FAILED)


def format_tests(outcome: dict) -> str:
    """Render a test run for people: one line per test, then what went wrong."""
    lines = []
    for test in outcome["tests"]:
        lines.append(
            f"{MARKS.get(test['outcome'], '?'):<5} {test['name']} ({test['duration_ms']} ms)"
        )
        if test["outcome"] != "passed":
            where = f"line {test['line']}: " if test.get("line") else ""
            lines += [f"      {where}{line}" for line in test["message"].splitlines()]
        if test.get("logs"):
            lines += [f"      | {line}" for line in test["logs"].rstrip().splitlines()]
    counts = f"{outcome['passed']} passed, {outcome['failed']} failed, {outcome['errors']} errors"
    lines.append(
        f"{outcome['total']} tests: {counts} ({outcome['duration_ms']} ms, run #{outcome['run']})"
    )
    error = outcome.get("error")
    if error and error["type"] != "TestsFailed":
        lines.append(f"error: {error['type']}: {error['message']}")
        if error.get("traceback"):
            lines.append(error["traceback"].rstrip())
    return "\n".join(lines)
