"""Small things of the connection and editor pages: removing credentials is offered only when
some are stored; the versions diff has no blank lines of its own."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from connections import services
from tests.factories import TRIVIAL_CODE, make_connection

pytestmark = pytest.mark.django_db

REMOVE = "Remove stored credentials"


def test_removing_credentials_is_offered_only_when_some_are_stored(client, owner, connection):
    client.force_login(owner)
    assert REMOVE not in client.get(reverse("connection_create")).content.decode()
    bare = make_connection(owner=owner, name="Bare")
    assert REMOVE not in client.get(reverse("connection_edit", args=[bare.slug])).content.decode()
    page = client.get(reverse("connection_edit", args=[connection.slug])).content.decode()
    assert REMOVE in page


def test_the_versions_diff_has_one_line_per_diff_line(client, owner, connector):
    services.connector_save_code(
        connector=connector,
        code=TRIVIAL_CODE.replace("[1, 2, 3]", "[4, 5]"),
        packages="",
        interface="pandas",
        parser="",
    )
    client.force_login(owner)
    page = client.get(reverse("connector_versions", args=[connector.slug])).content.decode()
    diff = re.search(r'<pre class="diff[^"]*">(.*?)</pre>', page, re.S).group(1)
    assert "\n" not in diff  # each line is a block span: a newline would add a blank line
    spans = re.findall(r'<span class="diff-(\w+)">', diff)
    assert spans.count("added") == 1 and spans.count("removed") == 1
