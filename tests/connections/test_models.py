"""Model constraints and code version numbering."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from connections import services
from connections.models import CodeVersion, Connector, code_fingerprint
from tests.factories import TRIVIAL_CODE, make_connection, make_connector

pytestmark = pytest.mark.django_db


def save_code(connector: Connector, **changes) -> CodeVersion | None:
    fields = {
        "code": connector.code,
        "packages": connector.packages,
        "interface": connector.interface,
        "parser": connector.parser,
    } | changes
    return services.connector_save_code(connector=connector, **fields)


def test_it_creates_version_one_with_the_connector(connector):
    version = connector.versions.get()
    assert version.number == 1
    assert version.code == connector.code
    assert version.fingerprint == connector.code_fingerprint


def test_it_numbers_versions_on_each_change(connector):
    assert save_code(connector, code=TRIVIAL_CODE + "\n# two\n").number == 2
    assert save_code(connector, packages="requests==2.32.3").number == 3
    assert save_code(connector, interface="bytes", parser="csv").number == 4
    assert list(connector.versions.values_list("number", flat=True)) == [4, 3, 2, 1]


def test_it_does_not_version_an_unchanged_save(connector):
    assert save_code(connector) is None
    assert connector.versions.count() == 1


def test_it_keeps_versions_immutable(connector):
    version = connector.versions.get()
    version.code = "changed"
    with pytest.raises(ValidationError, match="immutable"):
        version.save()
    version.refresh_from_db()
    assert version.code == connector.code


def test_it_refuses_duplicate_version_numbers(connector):
    with pytest.raises(IntegrityError), transaction.atomic():
        CodeVersion.objects.create(
            connector=connector, number=1, code="x", packages="", interface="pandas"
        )


def test_it_refuses_version_number_zero(connector):
    with pytest.raises(IntegrityError), transaction.atomic():
        CodeVersion.objects.create(
            connector=connector, number=0, code="x", packages="", interface="pandas"
        )


def test_it_requires_a_parser_for_bytes_connectors(connection):
    with pytest.raises(ValidationError, match="parser"):
        make_connector(connection=connection, interface="bytes", parser="")
    with pytest.raises(IntegrityError), transaction.atomic():
        Connector.objects.create(
            connection=connection, name="raw", slug="raw", interface="bytes", code="x"
        )


def test_it_refuses_duplicate_slugs(connection, owner):
    with pytest.raises(IntegrityError), transaction.atomic():
        Connector.objects.create(connection=connection, name="a", slug="dup", code="x")
        Connector.objects.create(connection=connection, name="b", slug="dup", code="x")


def test_it_makes_unique_slugs_from_names(owner):
    first = make_connection(owner=owner, name="Sales DB")
    second = make_connection(owner=owner, name="Sales DB")
    assert (first.slug, second.slug) == ("sales-db", "sales-db-2")


def test_it_fingerprints_every_part():
    base = code_fingerprint("code", "pkgs", "pandas", "")
    assert len(base) == 64
    assert base != code_fingerprint("code2", "pkgs", "pandas", "")
    assert base != code_fingerprint("code", "pkgs2", "pandas", "")
    assert base != code_fingerprint("code", "pkgs", "bytes", "")
    # Moving text from one field to another is a different connector.
    assert code_fingerprint("ab", "c", "pandas") != code_fingerprint("a", "bc", "pandas")


def test_it_refuses_duplicate_partition_names(connector):
    from runs.models import Partition

    Partition.objects.create(connector=connector, name="p", fingerprint="1", storage_path="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Partition.objects.create(connector=connector, name="p", fingerprint="2", storage_path="y")
