"""Mask a connection's secrets in everything that leaves the sandbox: the one place that masks.

Rule for what counts as a secret (`secrets_of`):
- the whole credentials string, and its whitespace-stripped form;
- when the credentials parse as JSON, every string leaf at any depth (dict values, list items;
  not dict keys, which are field names such as "token", and not numbers or booleans);
- each secret also in its JSON-escaped spelling (how it appears in a repr or a JSON dump);
- only values of at least MIN_SECRET_LENGTH characters: shorter ones ("us", "GET", "{}") are
  configuration rather than secrets, and masking them would corrupt unrelated output. Empty
  strings are never masked.
Longer secrets are replaced first so that a secret containing another is masked whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

MASK = "****"
MIN_SECRET_LENGTH = 4


def secrets_of(credentials: str) -> list[str]:
    """Return the strings to mask for these credentials, longest first."""
    found: set[str] = set()
    for candidate in _candidate_secrets(credentials or ""):
        if len(candidate.strip()) >= MIN_SECRET_LENGTH:
            found.add(candidate)
            escaped = json.dumps(candidate, ensure_ascii=False)[1:-1]
            if escaped != candidate:
                found.add(escaped)
    return sorted(found, key=lambda secret: (-len(secret), secret))


def _candidate_secrets(credentials: str) -> Iterator[str]:
    """Yield the whole credentials string and, for JSON credentials, every string leaf."""
    yield credentials
    yield credentials.strip()
    try:
        parsed = json.loads(credentials)
    except (ValueError, RecursionError):
        return
    yield from _string_leaves(parsed)


def _string_leaves(value: Any) -> Iterator[str]:
    """Yield every string leaf of a parsed JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _string_leaves(item)


def remote_secrets(url: str | None) -> list[str]:
    """Return the token of a Spark Connect URL (`sc://host:port/;token=...`), if it has one."""
    found = []
    for parameter in (url or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name == "token" and len(value) >= MIN_SECRET_LENGTH:
            found.append(value)
    return found


class Masker:
    """Replace a connection's secrets by MASK in text, JSON-like values and Arrow tables.

    `extra_secrets` (e.g. a Spark Connect token) are masked as they are, beside the credentials'.
    """

    def __init__(self, credentials: str, extra_secrets: list[str] | tuple[str, ...] = ()) -> None:
        found = set(secrets_of(credentials)) | {s for s in extra_secrets if s}
        self.secrets = sorted(found, key=lambda secret: (-len(secret), secret))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, text: str) -> str:
        """Return the text with every secret replaced."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def value(self, value: Any) -> Any:
        """Return a copy of a JSON-like value with secrets masked in every string and dict key."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def table(self, table: pa.Table) -> pa.Table:
        """Return the table with secrets masked in column names and every string value."""
        if not self.secrets:
            return table
        columns = [self._array(column) for column in table.columns]
        names = [self.text(name) for name in table.column_names]
        return pa.Table.from_arrays(columns, names=names)

    def _array(self, array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
        """Mask one column, descending into dictionaries, structs and lists."""
        if isinstance(array, pa.ChunkedArray):
            chunks = [self._array(chunk) for chunk in array.chunks]
            if not chunks:
                return array
            return pa.chunked_array(chunks, type=chunks[0].type)
        kind = array.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return self._strings(array)
        if pa.types.is_string_view(kind):
            return self._strings(array.cast(pa.large_string()))
        if pa.types.is_dictionary(kind):
            return pa.DictionaryArray.from_arrays(array.indices, self._array(array.dictionary))
        if pa.types.is_struct(kind):
            fields = [self._array(array.field(i)) for i in range(kind.num_fields)]
            names = [self.text(kind.field(i).name) for i in range(kind.num_fields)]
            return pa.StructArray.from_arrays(fields, names=names, mask=array.is_null())
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            values = self._array(array.values)
            list_class = pa.ListArray if pa.types.is_list(kind) else pa.LargeListArray
            return list_class.from_arrays(array.offsets, values, mask=array.is_null())
        return array

    def _strings(self, array: pa.Array) -> pa.Array:
        """Replace every secret in a string array."""
        for secret in self.secrets:
            array = pc.replace_substring(array, pattern=secret, replacement=MASK)
        return array
