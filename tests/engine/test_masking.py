"""Masker: which strings count as secrets, and masking of text, values and Arrow tables."""

from __future__ import annotations

import pyarrow as pa

from connector_engine.masking import MASK, Masker, secrets_of


def test_json_string_leaves_of_four_or_more_characters_are_secrets() -> None:
    credentials = '{"token": "abcd1234", "nested": {"keys": ["k-9999", "ab"]}, "port": 5432}'

    secrets = secrets_of(credentials)

    assert "abcd1234" in secrets and "k-9999" in secrets and credentials in secrets
    assert "ab" not in secrets and "5432" not in secrets and "token" not in secrets
    assert secrets == sorted(secrets, key=len, reverse=True)


def test_plain_credentials_are_masked_whole_and_stripped() -> None:
    masker = Masker("hunter22\n")

    assert masker.text("password=hunter22;") == f"password={MASK};"


def test_short_and_empty_credentials_mask_nothing() -> None:
    assert not Masker("")
    assert not Masker("abc")
    assert Masker("abc").text("abc") == "abc"


def test_longest_secret_is_masked_first() -> None:
    masker = Masker('{"a": "secret", "b": "secret-and-more"}')

    assert masker.text("x secret-and-more y secret") == f"x {MASK} y {MASK}"


def test_json_escaped_spelling_is_masked() -> None:
    masker = Masker('{"pw": "qu\\"ote-pass"}')

    assert MASK in masker.text('{"pw": "qu\\"ote-pass"}')


def test_values_are_masked_recursively_including_keys() -> None:
    masker = Masker('{"token": "tok-1234"}')

    value = masker.value({"tok-1234": ["a tok-1234 b", 3, None, {"k": "tok-1234"}]})

    assert value == {MASK: [f"a {MASK} b", 3, None, {"k": MASK}]}


def test_table_strings_column_names_dictionaries_structs_and_lists_are_masked() -> None:
    masker = Masker('{"token": "tok-1234"}')
    table = pa.table(
        {
            "plain": ["x tok-1234", None],
            "large": pa.array(["tok-1234", "y"], type=pa.large_string()),
            "dict": pa.array(["tok-1234", "tok-1234"]).dictionary_encode(),
            "struct": pa.array([{"s": "tok-1234"}, None]),
            "list": pa.array([["tok-1234"], []]),
            "tok-1234": [1, 2],
        }
    )

    masked = masker.table(table)

    assert masked.column("plain").to_pylist() == [f"x {MASK}", None]
    assert masked.column("large").to_pylist() == [MASK, "y"]
    assert masked.column("dict").to_pylist() == [MASK, MASK]
    assert masked.column("struct").to_pylist() == [{"s": MASK}, None]
    assert masked.column("list").to_pylist() == [[MASK], []]
    assert masked.column_names[-1] == MASK
