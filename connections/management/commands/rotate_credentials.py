"""Re-encrypt every stored credential under the newest key (optionally adding a new key first)."""

from __future__ import annotations

import os

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from connections.services import credentials_rotate


class Command(BaseCommand):
    help = "Re-encrypt all connection credentials under the newest CREDENTIALS_KEYS key."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--new-key",
            action="store_true",
            help="Generate a new key and put it first in the key file before re-encrypting "
            "(only when the keys come from the data directory, not from CREDENTIALS_KEYS).",
        )

    def handle(self, *args, new_key: bool, **options) -> None:
        keys = list(settings.CREDENTIALS_KEYS)
        if new_key:
            if os.environ.get("CREDENTIALS_KEYS") or os.environ.get("CREDENTIALS_KEYS_FILE"):
                raise CommandError(
                    "Keys come from the environment: put a new Fernet key first in "
                    "CREDENTIALS_KEYS yourself, then run this command without --new-key."
                )
            keys.insert(0, Fernet.generate_key().decode())
            path = settings.CREDENTIALS_KEYS_FILE
            # Write the new key list before re-encrypting, so no token is ever unreadable.
            temporary = path.with_suffix(".new")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write("\n".join(keys) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            self.stdout.write(f"Added a new key to {path}; older keys stay for decryption.")
        count = credentials_rotate(keys=keys)
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {count} credential(s) under the newest key.")
        )
