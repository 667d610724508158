"""API fixtures: a bearer client per user (owner, team member, viewer, stranger)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from api.services import api_token_create
from tests.factories import UserFactory


def bearer_client(user) -> Client:
    _token, secret = api_token_create(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {secret}"}, enforce_csrf_checks=True)


@pytest.fixture
def viewer(db, connection):
    """A user in a group the connection is shared with to view only."""
    user = UserFactory(username="viewer")
    group = Group.objects.create(name="viewers")
    user.groups.add(group)
    connection.viewers.add(group)
    return user


@pytest.fixture
def owner_api(owner) -> Client:
    return bearer_client(owner)


@pytest.fixture
def member_api(member) -> Client:
    return bearer_client(member)


@pytest.fixture
def viewer_api(viewer) -> Client:
    return bearer_client(viewer)


@pytest.fixture
def stranger_api(stranger) -> Client:
    return bearer_client(stranger)
