"""Write a connector as one .py file: a readable header, then its code."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from connections import export_format
from connections.models import Connector
from connections.services import connector_export

EXIT_USAGE = 2


class Command(BaseCommand):
    help = (
        "Export a saved connector (SLUG) as one .py file: a header (name, interface, parser and "
        "its options, packages) followed by the code. Written to stdout, or to --out FILE."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="the connector's slug")
        parser.add_argument("--out", help="the file to write (default: stdout)")

    def handle(self, *args, **options) -> None:
        try:
            connector = Connector.objects.get(slug=options["slug"])
        except Connector.DoesNotExist:
            raise CommandError(
                f"no connector with slug {options['slug']!r}", returncode=EXIT_USAGE
            ) from None
        text = export_format.render(connector_export(connector=connector))
        if options["out"] is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["out"]).write_text(text)
        except OSError as exc:
            raise CommandError(
                f"cannot write {options['out']}: {exc.strerror}", returncode=EXIT_USAGE
            ) from None
        self.stderr.write(f"Exported {connector.slug} to {options['out']}")
