"""Create an API token for a user: `manage.py api_token create USERNAME [--name NAME]`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token; the token is printed once, as the last line of the output."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a named token for USERNAME")
        create.add_argument("username")
        create.add_argument("--name", default="cli", help="a name to tell the token apart")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        token, secret = api_token_create(user=user, name=options["name"])
        self.stderr.write(
            f"Created token {token.name!r} for {user.get_username()}; it is shown only once:"
        )
        self.stdout.write(secret)
