"""Mask a connection's secrets in what people see: the one place that masks.

What counts as a secret is connector_engine.credentials' rule (`secret_values`): the values of
the credentials' secret fields (or the whole text when it is not a JSON object), in every
spelling (as they are, JSON-escaped, URL-encoded, base64), also inside longer strings. Values of
fields that are not secret are never masked. Longer secrets are replaced first so that a secret
containing another is masked whole. Masking is for what people see (logs, errors, previews, the
partition rows view); ingested data is never masked.

Arrow tables (`Masker.table`): every type, values and names alike.
- string, large string, binary, large binary: each secret replaced by MASK with
  pyarrow.compute (binary: the secret's UTF-8 bytes); string and binary views the same, through
  their large form and back.
- fixed-size binary: a value cannot change width, so each secret's bytes become as many b"*".
- lists (also large, fixed-size and views), maps, structs, unions (sparse and dense),
  run-end-encoded, dictionaries: the children are masked and the array is rebuilt around its own
  buffers, so type, nulls, offsets and type codes stay; nested field names and field metadata
  are masked too.
- extension types: the storage is masked. The extension is kept only if the storage type did
  not change and the type's serialized name and metadata hold no secret; otherwise the column
  becomes its masked storage (the secret may live in the type itself).
- null, booleans, numbers, decimals, dates, times, timestamps, durations, intervals: as they are.
- any other type: the table is refused (`UnmaskableColumn`, naming the column), never passed on.
- column names are masked; schema and column metadata are dropped (they may hold anything).
"""

from __future__ import annotations

from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.compute as pc

from connector_engine.credentials import MIN_SECRET_LENGTH, secret_values

MASK = "****"


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

    `secret_fields` names the credentials' secret fields (None: each field's default by name);
    `extra_secrets` (e.g. a Spark Connect token) are masked as they are, beside the credentials'.
    """

    def __init__(
        self,
        credentials: str = "",
        extra_secrets: list[str] | tuple[str, ...] = (),
        *,
        secret_fields: list[str] | None = None,
    ) -> None:
        found = set(secret_values(credentials, secret_fields)) | {s for s in extra_secrets if s}
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
        """Return the table with secrets masked in column names and every value of every type.

        Raises UnmaskableColumn for a column of a type masking cannot look into.
        """
        if not self.secrets:
            return table
        columns = [
            self._column(column, name)
            for name, column in zip(table.column_names, table.columns, strict=True)
        ]
        names = [self.text(name) for name in table.column_names]
        return pa.Table.from_arrays(columns, names=names)

    def _column(self, column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
        """Mask one column chunk by chunk (an empty column still gets its masked type)."""
        chunks = column.chunks
        if not chunks:
            masked_type = self._array(pa.nulls(0, column.type), name).type
            if masked_type.equals(column.type, check_metadata=True):
                return column
            return pa.chunked_array([], masked_type)
        masked = [self._array(chunk, name) for chunk in chunks]
        if all(new is old for new, old in zip(masked, chunks, strict=True)):
            return column
        return pa.chunked_array(masked, type=masked[0].type)

    def _array(self, array: pa.Array, column: str) -> pa.Array:
        """Mask one array of any type, keeping its type, nulls and offset (see the module doc)."""
        kind = array.type
        if _carries_no_text(kind):
            return array
        if _is_variable_binary(kind):
            return self._replace(array)
        if pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
            wide = pa.large_string() if pa.types.is_string_view(kind) else pa.large_binary()
            masked = self._replace(array.cast(wide))
            return masked.cast(kind)
        if pa.types.is_fixed_size_binary(kind):
            return self._fixed_binary(array)
        if pa.types.is_dictionary(kind):
            dictionary = array.dictionary
            values = self._array(dictionary, column)
            if values is dictionary:
                return array
            return pa.DictionaryArray.from_arrays(array.indices, values, ordered=kind.ordered)
        if isinstance(kind, pa.BaseExtensionType):
            return self._extension(array, column)
        if _is_nested(kind):
            return self._nested(array, column)
        return self._unmaskable(array, column)

    def _unmaskable(self, array: pa.Array, column: str) -> NoReturn:
        """Refuse a column of a type masking cannot look into (one a later Arrow adds, say)."""
        raise UnmaskableColumn(
            f"Column {self.text(column)!r} has the Arrow type {self.text(str(array.type))}, "
            "which secret masking cannot look into; return it as strings, binary, numbers, "
            "lists or structs instead"
        )

    def _replace(self, array: pa.Array) -> pa.Array:
        """Replace every secret in a string or binary array (binary: the secret's UTF-8 bytes)."""
        for secret in self.secrets:
            array = pc.replace_substring(array, pattern=secret, replacement=MASK)
        return array

    def _fixed_binary(self, array: pa.Array) -> pa.Array:
        """Overwrite each secret's bytes by as many b"*": a fixed-size value keeps its width."""
        width = array.type.byte_width
        secrets = [secret for secret in self.secrets if len(secret.encode()) <= width]
        if not secrets:
            return array
        values = array.cast(pa.binary())
        for secret in secrets:
            stars = "*" * len(secret.encode())
            values = pc.replace_substring(values, pattern=secret, replacement=stars)
        return values.cast(array.type)

    def _extension(self, array: pa.ExtensionArray, column: str) -> pa.Array:
        """Mask an extension array's storage; drop the extension when it cannot stay as it was.

        The extension type is kept only if the masked storage still has its storage type and
        the type's own serialized form (name and metadata) holds no secret.
        """
        kind = array.type
        storage = array.storage
        masked = self._array(storage, column)
        if masked.type.equals(kind.storage_type, check_metadata=True) and not self._in_type(kind):
            return array if masked is storage else pa.ExtensionArray.from_storage(kind, masked)
        return masked

    def _in_type(self, kind: pa.DataType) -> bool:
        """Say whether a secret appears in a type as Arrow IPC writes it (names, metadata)."""
        written = pa.schema([pa.field("column", kind)]).serialize().to_pybytes()
        return any(secret.encode() in written for secret in self.secrets)

    def _nested(self, array: pa.Array, column: str) -> pa.Array:
        """Mask the children of a list, map, struct, union or run-end-encoded array.

        The array is rebuilt from its own buffers around the masked children, so its type (with
        masked field names and field metadata), nulls, offsets and type codes stay as they were.
        """
        kind = array.type
        if array.offset and (pa.types.is_struct(kind) or kind.id == _SPARSE_UNION):
            array = pa.concat_arrays([array])  # their children are read at the parent's offset
        children = _children(array)
        masked = [self._array(child, column) for child in children]
        masked_type = _rebuilt_type(
            kind, [self._field(f, c.type) for f, c in zip(_child_fields(kind), masked, strict=True)]
        )
        unchanged = all(new is old for new, old in zip(masked, children, strict=True))
        if unchanged and masked_type.equals(kind, check_metadata=True):
            return array
        buffers = array.buffers()[: kind.num_buffers]
        return pa.Array.from_buffers(
            masked_type, len(array), buffers, offset=array.offset, children=masked
        )

    def _field(self, field: pa.Field, kind: pa.DataType) -> pa.Field:
        """Return a child field of the given type, its name and metadata masked."""
        metadata = field.metadata
        if metadata:
            metadata = {self._bytes(key): self._bytes(value) for key, value in metadata.items()}
        return pa.field(self.text(field.name), kind, nullable=field.nullable, metadata=metadata)

    def _bytes(self, data: bytes) -> bytes:
        """Replace every secret's UTF-8 bytes in a byte string."""
        for secret in self.secrets:
            data = data.replace(secret.encode(), MASK.encode())
        return data


class UnmaskableColumn(ValueError):
    """A column of an Arrow type that masking cannot look into: refused, never passed through."""


_SPARSE_UNION = pa.sparse_union([]).id
_LIST_TYPES = {
    pa.list_(pa.null()).id: pa.list_,
    pa.large_list(pa.null()).id: pa.large_list,
    pa.list_view(pa.null()).id: pa.list_view,
    pa.large_list_view(pa.null()).id: pa.large_list_view,
}


def _carries_no_text(kind: pa.DataType) -> bool:
    """Say whether values of this type are numbers, booleans, dates, times or nulls."""
    return (
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_temporal(kind)
    )


def _is_variable_binary(kind: pa.DataType) -> bool:
    """Say whether replace_substring takes this type as it is."""
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def _is_nested(kind: pa.DataType) -> bool:
    """Say whether _nested knows this type's children."""
    return (
        kind.id in _LIST_TYPES
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_map(kind)
        or pa.types.is_struct(kind)
        or pa.types.is_union(kind)
        or pa.types.is_run_end_encoded(kind)
    )


def _children(array: pa.Array) -> list[pa.Array]:
    """Return a nested array's children as its buffers address them (at the parent's offset)."""
    kind = array.type
    if pa.types.is_run_end_encoded(kind):
        return [array.run_ends, array.values]
    if pa.types.is_struct(kind) or pa.types.is_union(kind):
        return [array.field(i) for i in range(kind.num_fields)]
    return [array.values]  # lists and maps (a map's values are its entries struct)


def _child_fields(kind: pa.DataType) -> list[pa.Field]:
    """Return the fields of a nested type's children, in the order of `_children`."""
    if pa.types.is_run_end_encoded(kind):
        return [pa.field("run_ends", kind.run_end_type), pa.field("values", kind.value_type)]
    if pa.types.is_struct(kind) or pa.types.is_union(kind):
        return [kind.field(i) for i in range(kind.num_fields)]
    if pa.types.is_map(kind):
        entries = pa.struct([kind.key_field, kind.item_field])
        return [pa.field("entries", entries, nullable=False)]
    return [kind.value_field]


def _rebuilt_type(kind: pa.DataType, fields: list[pa.Field]) -> pa.DataType:
    """Return the nested type `kind` with these child fields."""
    if kind.id in _LIST_TYPES:
        return _LIST_TYPES[kind.id](fields[0])
    if pa.types.is_fixed_size_list(kind):
        return pa.list_(fields[0], kind.list_size)
    if pa.types.is_map(kind):
        entries = fields[0].type
        return pa.map_(entries.field(0), entries.field(1), keys_sorted=kind.keys_sorted)
    if pa.types.is_struct(kind):
        return pa.struct(fields)
    if pa.types.is_union(kind):
        make = pa.sparse_union if kind.id == _SPARSE_UNION else pa.dense_union
        return make(fields, type_codes=list(kind.type_codes))
    return pa.run_end_encoded(kind.run_end_type, fields[1].type)
