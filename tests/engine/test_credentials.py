"""Credentials as fields: which are secret by default, what is masked, in which spellings."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pyarrow as pa
import pytest

from connector_engine.credentials import credential_fields, looks_secret, secret_values
from connector_engine.masking import MASK, Masker

S3 = {
    "bucket": "flights",
    "endpoint_url": "http://127.0.0.1:9000",
    "region": "eu-west-1",
    "aws_access_key_id": "AKIAEXAMPLE",
    "aws_secret_access_key": "wJalr/XUtnFEMI+K7MDENG",
}


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "api_key",
        "apiKey",
        "secret_access_key",
        "token",
        "private_key",
        "auth",
        "Authorization",
        "credentials",
        "service_account_json",
        "connectionString",
        "DSN",
    ],
)
def test_names_that_look_secret_default_to_secret(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name", ["bucket", "endpoint_url", "region", "host", "user", "username", "monkey", "port"]
)
def test_configuration_names_default_to_shown(name: str) -> None:
    assert not looks_secret(name)


def test_only_secret_fields_are_masked_and_configuration_never_is() -> None:
    masker = Masker(json.dumps(S3))

    line = "s3://flights/flights-city-0 at http://127.0.0.1:9000 in eu-west-1 with AKIAEXAMPLE"
    assert (
        masker.text(line)
        == f"s3://flights/flights-city-0 at http://127.0.0.1:9000 in eu-west-1 with {MASK}"
    )
    assert masker.text("Bearer wJalr/XUtnFEMI+K7MDENG") == f"Bearer {MASK}"


def test_the_owner_decides_which_fields_are_secret() -> None:
    masker = Masker(json.dumps(S3), secret_fields=["bucket"])

    assert masker.text("flights AKIAEXAMPLE") == f"{MASK} AKIAEXAMPLE"
    fields = credential_fields(json.dumps(S3), ["bucket"])
    assert [(f.name, f.secret) for f in fields][:2] == [("bucket", True), ("endpoint_url", False)]


def test_secrets_are_masked_in_their_encoded_spellings() -> None:
    secret = S3["aws_secret_access_key"]
    masker = Masker(json.dumps(S3))

    for spelling in (
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
    ):
        assert masker.text(f"x {spelling} y") == f"x {MASK} y", spelling


def test_a_secret_field_holding_json_masks_its_leaves_too() -> None:
    key_file = json.dumps({"type": "service_account", "private_key": "-----BEGIN KEY-----abc"})
    masker = Masker(json.dumps({"project": "demo", "service_account": key_file}))

    assert masker.text("key -----BEGIN KEY-----abc") == f"key {MASK}"
    assert masker.text("project demo") == "project demo"


def test_plain_text_credentials_are_one_secret() -> None:
    assert "hunter22" in secret_values("hunter22\n")
    assert credential_fields("hunter22") == []


def test_short_values_are_not_secrets() -> None:
    assert secret_values('{"password": "abc"}') == []


def test_tables_keep_configuration_values_and_mask_secrets() -> None:
    masker = Masker(json.dumps(S3))
    table = pa.table({"href": ["s3://flights/a", "AKIAEXAMPLE"], "flights": [1, 2]})

    masked = masker.table(table)

    assert masked.column_names == ["href", "flights"]
    assert masked.column("href").to_pylist() == ["s3://flights/a", MASK]
