"""Create a connector from an export file, or save it as a new version of an existing one."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from connections import audit, export_format
from connections.models import AuditVia, Connection
from connections.services import connector_import

EXIT_USAGE = 2


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_USAGE)


class Command(BaseCommand):
    help = (
        "Import a connector file written by export_connector into a connection: creates the "
        "connector, or saves a new version when the slug (--slug, else the file's) exists."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="an export file (.py)")
        parser.add_argument("--connection", required=True, help="the connection's slug")
        parser.add_argument("--slug", help="the connector's slug (default: the file's)")

    def handle(self, *args, **options) -> None:
        try:
            text = Path(options["file"]).read_text()
        except OSError as exc:
            raise usage_error(f"cannot read {options['file']}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise usage_error(f"{options['file']} is not UTF-8 text") from None
        try:
            export = export_format.parse(text)
        except export_format.ExportFormatError as exc:
            raise usage_error(f"{options['file']}, {exc}") from None
        try:
            connection = Connection.objects.get(slug=options["connection"])
        except Connection.DoesNotExist:
            raise usage_error(f"no connection with slug {options['connection']!r}") from None
        try:
            with audit.acting(via=AuditVia.CLI, name="manage.py import_connector"):
                connector, version, created = connector_import(
                    connection=connection, export=export, slug=options["slug"] or ""
                )
        except ValidationError as exc:
            raise usage_error(f"{options['file']}: {'; '.join(exc.messages)}") from None
        except ValueError as exc:
            raise usage_error(str(exc)) from None
        if created:
            self.stdout.write(f"Created {connector.slug} (version 1)")
        elif version is None:
            self.stdout.write(
                f"{connector.slug} is unchanged (version {connector.latest_version.number})"
            )
        else:
            self.stdout.write(f"Saved {connector.slug} version {version.number}")
