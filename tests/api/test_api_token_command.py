from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from api.models import ApiToken


def test_it_prints_the_new_token_as_the_last_line(owner):
    out, err = StringIO(), StringIO()
    call_command("api_token", "create", "owner", "--name", "ci", stdout=out, stderr=err)
    secret = out.getvalue().strip().splitlines()[-1]
    token = ApiToken.objects.get(user=owner)
    assert token.name == "ci" and secret.startswith(token.prefix)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    assert client.get("/api/v1/connections").status_code == 200


def test_it_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user"):
        call_command("api_token", "create", "nobody", stdout=StringIO(), stderr=StringIO())
