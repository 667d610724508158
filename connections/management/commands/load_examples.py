"""Load the example connection and its three offline connectors; a rerun changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connections import audit, services
from connections.models import AuditVia, Connection, Connector

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
CONNECTION_SLUG = "examples"
# (name, slug, file, interface, parser)
CONNECTORS = [
    ("Languages (pandas)", "languages-pandas", "languages_pandas.py", "pandas", ""),
    ("Languages (spark)", "languages-spark", "languages_spark.py", "spark", ""),
    ("Sales CSV folders", "sales-csv-folders", "csv_folders.py", "bytes", "csv"),
]


class Command(BaseCommand):
    help = "Create the example connection and connectors if they are missing."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        with audit.acting(via=AuditVia.CLI, name="manage.py load_examples"):
            self.load()

    def load(self) -> None:
        owner = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("No admin user yet: run `manage.py ensure_admin` first.")
        connection = Connection.objects.filter(slug=CONNECTION_SLUG).first()
        if connection is None:
            connection = services.connection_create(
                name="Examples",
                slug=CONNECTION_SLUG,
                owner=owner,
                description="Offline examples: a languages table and CSV files in folders.",
                credentials=json.dumps({"root": str(EXAMPLES_DIR / "files")}),
                library_code=(EXAMPLES_DIR / "library.py").read_text(),
            )
            self.stdout.write(f"Created connection {connection.slug!r}.")
        for name, slug, filename, interface, parser in CONNECTORS:
            if Connector.objects.filter(slug=slug).exists():
                continue
            services.connector_create(
                connection=connection,
                name=name,
                slug=slug,
                code=(EXAMPLES_DIR / filename).read_text(),
                interface=interface,
                parser=parser,
                author=owner,
            )
            self.stdout.write(f"Created connector {slug!r}.")
