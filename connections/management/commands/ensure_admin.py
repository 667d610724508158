"""Create the first admin user from the environment, or with a generated password shown once."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser when none exists: ADMIN_USERNAME (default admin), ADMIN_EMAIL and "
        "ADMIN_PASSWORD from the environment, or a generated password printed once."
    )

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("ADMIN_USERNAME") or "admin"
        password = os.environ.get("ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=username, email=os.environ.get("ADMIN_EMAIL", ""), password=password
        )
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin user {username!r} with password {password}\n"
                    "It is shown only this once; change it in the admin."
                )
            )
        else:
            self.stdout.write(f"Created admin user {username!r} from ADMIN_PASSWORD.")
