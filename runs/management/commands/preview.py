"""Preview a connector from the command line, through the same sandbox as the web editor.

A package environment that is not built yet is built here first (the command waits), with
progress lines on stderr; stdout keeps only the preview.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from packaging.markers import InvalidMarker, Marker

from connections.models import Connector
from connector_engine.protocol import (
    ACTIONS,
    INTERFACES,
    PARSERS,
    Action,
    SandboxRequest,
    SandboxResult,
)
from connectors_site import engine_config
from environments.services import (
    ConnectorEnvironment,
    connector_environment_current,
    connector_environment_ensure,
    packages_environment_current,
    packages_environment_ensure,
)
from runs import services

# Exit statuses: the preview worked / the user's code failed / bad usage.
EXIT_OK, EXIT_CODE_FAILED, EXIT_USAGE = 0, 1, 2
BUILD_PROGRESS_EVERY_S = 5.0  # a line on stderr this often while an environment builds


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_USAGE)


def read_text(path: str | None, what: str) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise usage_error(f"cannot read {what} {path}: {exc.strerror}") from None


class Command(BaseCommand):
    help = (
        "Run a preview (context, list, read or schema) of a saved connector (SLUG, recorded as a "
        "run) or of a file (--file). Exit status 0: worked; 1: the connector's code failed; "
        "2: bad usage."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", nargs="?", help="a saved connector's slug")
        parser.add_argument("--file", help="a connector module to preview instead of a saved one")
        # Tests have their own command (test_connector).
        parser.add_argument(
            "--action", required=True, choices=[a for a in ACTIONS if a != Action.TEST]
        )
        parser.add_argument("--interface", choices=INTERFACES)
        parser.add_argument("--parser", choices=PARSERS)
        parser.add_argument(
            "--parser-options",
            help='the parser\'s options as a JSON object, like {"delimiter": ";", "header": false}',
        )
        parser.add_argument(
            "--packages",
            help='requirements, separated by ";" or newlines, like "a>=1; b" (a saved '
            "connector's own packages are replaced; its connection's stay)",
        )
        parser.add_argument(
            "--packages-file", help="a requirements file (one per line), added to --packages"
        )
        parser.add_argument("--credentials-file", help="credentials string for --file previews")
        parser.add_argument("--library-file", help="shared library code for --file previews")
        parser.add_argument(
            "--object", help="JSON metadata: the leaf to read, or the prefix to expand"
        )
        parser.add_argument("--limit", type=int, help="rows to return from a read")
        parser.add_argument("--max-objects", type=int, help="stop listing after this many")
        parser.add_argument("--timeout", type=float, help="seconds before the run is stopped")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options) -> None:
        if bool(options["slug"]) == bool(options["file"]):
            raise usage_error("give either a connector SLUG or --file PATH")
        for name in ("limit", "max_objects", "timeout"):
            if options[name] is not None and options[name] <= 0:
                raise usage_error(f"--{name.replace('_', '-')} must be positive")
        metadata = self.parse_json_object(options["object"], "--object", '{"name": "a.csv"}')
        options["parser_options"] = self.parse_json_object(
            options["parser_options"], "--parser-options", '{"delimiter": ";"}'
        )
        options["packages"] = self.packages_text(options)
        if options["slug"]:
            outcome = self.preview_saved(options, metadata)
        else:
            outcome = self.preview_file(options, metadata)
        if options["json"]:
            self.stdout.write(json.dumps(outcome, default=str))
        else:
            self.stdout.write(format_outcome(outcome))
        if not outcome["ok"]:
            raise SystemExit(EXIT_CODE_FAILED)

    def parse_json_object(self, raw: str | None, option: str, example: str) -> dict | None:
        """The JSON object an option holds (None when not given); bad usage otherwise."""
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise usage_error(f"{option} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise usage_error(f"{option} must be a JSON object, like {example}")
        return value

    def packages_text(self, options: dict) -> str | None:
        """The requirements of --packages and --packages-file, one per line; None: neither."""
        if options["packages"] is None and options["packages_file"] is None:
            return None
        lines = split_requirements(options["packages"] or "")
        if options["packages_file"] is not None:
            lines += read_text(options["packages_file"], "packages file").splitlines()
        return "\n".join(lines)

    def wait_for_environment(
        self, current: ConnectorEnvironment, ensure: Callable[[], ConnectorEnvironment]
    ) -> ConnectorEnvironment:
        """Build the environment when it is not built yet, with progress lines on stderr."""
        if not current.building:
            return current  # built, failed to, or no packages at all
        write = self.stderr.write
        write(
            f"Building the package environment {current.key[:12]} (once: later previews reuse it)"
        )
        started = time.monotonic()
        with BuildProgress(write, started):
            environment = ensure()
        seconds = time.monotonic() - started
        state = "ready" if environment.ok else "failed to build"
        write(f"The package environment {current.key[:12]} {state} after {seconds:.1f} s")
        return environment

    def preview_saved(self, options: dict, metadata: dict | None) -> dict:
        if options["credentials_file"] or options["library_file"]:
            raise usage_error(
                "--credentials-file and --library-file go with --file; a saved connector "
                "uses its connection's"
            )
        try:
            connector = Connector.objects.select_related("connection").get(slug=options["slug"])
        except Connector.DoesNotExist:
            raise usage_error(f"no connector with slug {options['slug']!r}") from None
        packages = options["packages"]
        self.wait_for_environment(
            connector_environment_current(connector=connector, packages=packages),
            lambda: connector_environment_ensure(connector=connector, packages=packages),
        )
        run = services.preview_run(
            connector=connector,
            action=options["action"],
            interface=options["interface"],
            parser=options["parser"],
            parser_options=options["parser_options"],
            packages=packages,
            object=metadata,
            row_limit=options["limit"],
            max_objects=options["max_objects"],
            timeout_s=options["timeout"],
        )
        return run.preview_json()

    def preview_file(self, options: dict, metadata: dict | None) -> dict:
        interface = options["interface"] or "pandas"
        if interface == "bytes" and not options["parser"]:
            raise usage_error("--interface bytes needs --parser (csv, jsonl, parquet or lines)")
        request = SandboxRequest(
            action=options["action"],
            code=read_text(options["file"], "connector file"),
            library_code=read_text(options["library_file"], "library file"),
            interface=interface,
            parser=options["parser"],
            parser_options=options["parser_options"] or {},
            credentials=read_text(options["credentials_file"], "credentials file"),
            object=metadata,
            limits=engine_config.preview_limits(
                row_limit=options["limit"],
                max_objects=options["max_objects"],
                timeout_s=options["timeout"],
            ),
        )
        if not options["packages"]:
            return services.run_in_sandbox(request).to_json()
        packages = options["packages"]
        environment = self.wait_for_environment(
            packages_environment_current(packages=packages),
            lambda: packages_environment_ensure(packages=packages),
        )
        if not environment.ok:
            error = environment.run_error()
            return SandboxResult(ok=False, action=request.action, error=error).to_json()
        return services.run_in_sandbox(request, environment=environment.ready).to_json()


def split_requirements(text: str) -> list[str]:
    """Split --packages into requirement lines at ";" and newlines, keeping a PEP 508 marker
    (`pywin32; sys_platform == "win32"`) with its requirement."""
    lines: list[str] = []
    for piece in (part.strip() for line in text.splitlines() for part in line.split(";")):
        if not piece:
            continue
        if lines and _is_marker(piece):
            lines[-1] = f"{lines[-1]}; {piece}"
        else:
            lines.append(piece)
    return lines


def _is_marker(text: str) -> bool:
    try:
        Marker(text)
    except InvalidMarker:
        return False
    return True


class BuildProgress:
    """While a package environment builds: a line on stderr every BUILD_PROGRESS_EVERY_S."""

    def __init__(self, write: Callable[[str], None], started: float) -> None:
        self.write = write
        self.started = started
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="build-progress", daemon=True)

    def __enter__(self) -> BuildProgress:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.done.wait(BUILD_PROGRESS_EVERY_S):
            elapsed = time.monotonic() - self.started
            self.write(f"  still building the package environment, {elapsed:.0f} s elapsed")


def format_outcome(outcome: dict) -> str:
    """Render a preview for people: the result, then logs and any error."""
    status = "ok" if outcome["ok"] else "failed"
    lines = [
        f"{outcome['action']}: {status} in {outcome['duration_ms']} ms ({outcome['isolation']})"
    ]
    if result := outcome.get("result"):
        lines += FORMATTERS[outcome["action"]](result)
    if outcome.get("logs"):
        lines += ["logs:", outcome["logs"].rstrip()]
    if error := outcome.get("error"):
        where = f" in {error['function']}, line {error['line']}" if error.get("function") else ""
        lines.append(f"error: {error['type']}: {error['message']}{where}")
        if error.get("traceback"):
            lines.append(error["traceback"].rstrip())
    return "\n".join(lines)


def format_context(result: dict) -> list[str]:
    return [f"  {i['key']!s:<20} {i['type']:<16} {i['repr']}" for i in result.get("items", [])]


def format_listing(result: dict) -> list[str]:
    """Draw the listing as a tree: each prefix followed by what it contains."""
    children: dict[str | None, list[dict]] = {}
    for item in result.get("objects", []):
        children.setdefault(item["parent"], []).append(item)
    lines: list[str] = []

    def draw(parent: str | None, indent: str) -> None:
        for item in children.get(parent, []):
            if item["is_prefix"]:
                # The name as given (a prefix often ends in "/" already): "+" marks a prefix.
                lines.append(f"{indent}+ {item['name']}")
                draw(item["name"], indent + "  ")
            else:
                lines.append(f"{indent}{item['name']}  [{item['fingerprint']}]")

    draw(None, "  ")
    limit = " (limit reached)" if result.get("truncated") else ""
    lines.append(f"  {result.get('leaf_count', 0)} leaves{limit}")
    return lines + [f"  problem: {p['message']}  {p['object']}" for p in result.get("problems", [])]


def format_rows(result: dict) -> list[str]:
    columns = result.get("columns", [])
    rows = result.get("rows", [])
    lines = ["  " + " | ".join(f"{c['name']} ({c['type']})" for c in columns)]
    lines += ["  " + " | ".join(str(value) for value in row) for row in rows]
    shown = f" (first {len(rows)} shown)" if result.get("truncated") else ""
    return [*lines, f"  {result.get('row_count', 0)} rows{shown}"]


def format_schema(result: dict) -> list[str]:
    lines = []
    for title in ("declared", "sampled"):
        fields = result.get(title)
        shown = ", ".join(f"{f['name']}: {f['type']}" for f in fields) if fields else "-"
        lines.append(f"  {title}: {shown}")
    return lines + [f"  difference: {d}" for d in result.get("differences", [])]


FORMATTERS = {
    "context": format_context,
    "list": format_listing,
    "read": format_rows,
    "schema": format_schema,
}
