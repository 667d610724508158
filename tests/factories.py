"""Factories for model objects used across tests."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from connections import services
from connections.models import Connection, Connector

TRIVIAL_CODE = """\
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "v1", "is_prefix": False}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": [1, 2, 3]})
"""


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("password-123")


def make_connection(*, owner, name: str = "Source", credentials: str = "", **fields) -> Connection:
    """Create a connection through the service, as the app does."""
    return services.connection_create(name=name, owner=owner, credentials=credentials, **fields)


def make_connector(
    *, connection: Connection, name: str = "Reader", code: str = TRIVIAL_CODE, **fields
) -> Connector:
    """Create a connector (and its first version) through the service."""
    return services.connector_create(connection=connection, name=name, code=code, **fields)
