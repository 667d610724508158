"""Masker: which strings count as secrets, and masking of text, values and Arrow tables."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from connector_engine.masking import MASK, Masker, UnmaskableColumn


def test_plain_credentials_are_masked_whole_and_stripped() -> None:
    masker = Masker("hunter22\n")

    assert masker.text("password=hunter22;") == f"password={MASK};"


def test_short_and_empty_credentials_mask_nothing() -> None:
    assert not Masker("")
    assert not Masker("abc")
    assert Masker("abc").text("abc") == "abc"


def test_longest_secret_is_masked_first() -> None:
    masker = Masker('{"password": "secret", "token": "secret-and-more"}')

    assert masker.text("x secret-and-more y secret") == f"x {MASK} y {MASK}"


def test_json_escaped_spelling_is_masked() -> None:
    masker = Masker('{"password": "qu\\"ote-pass"}')

    assert masker.text('{"password": "qu\\"ote-pass"}') == f'{{"password": "{MASK}"}}'


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


# --- every Arrow type ----------------------------------------------------------------------

SECRET = "tok-1234"
SECRET_BYTES = SECRET.encode()
TEXT_MAP = pa.map_(pa.string(), pa.string())


class Smuggler(pa.ExtensionType):
    """An extension type whose serialized metadata is chosen by the test."""

    def __init__(self, note: bytes = b"") -> None:
        self.note = note
        super().__init__(pa.binary(), "test.smuggler")

    def __arrow_ext_serialize__(self) -> bytes:
        return self.note

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized) -> Smuggler:
        return cls(serialized)


def masked(array: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Mask a one-column table holding `array`, check it, and return the masked column."""
    table = Masker(f'{{"token": "{SECRET}"}}').table(pa.table({"c": array}))
    table.validate(full=True)
    assert SECRET_BYTES not in ipc_bytes(table)
    return table.column(0)


def same_memory(left: pa.Array, right: pa.Array) -> bool:
    """Say whether two arrays are the same data (the masker did not copy or rebuild it)."""
    addresses = [[b.address if b else None for b in a.buffers()] for a in (left, right)]
    return left.type == right.type and addresses[0] == addresses[1]


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    "kind", [pa.string(), pa.large_string(), pa.string_view()], ids=lambda kind: str(kind)
)
def test_string_types_keep_their_type_and_nulls(kind: pa.DataType) -> None:
    column = masked(pa.array([f"a {SECRET} b", None, "kept"], type=kind))

    assert column.type == kind
    assert column.to_pylist() == [f"a {MASK} b", None, "kept"]


@pytest.mark.parametrize(
    "kind", [pa.binary(), pa.large_binary(), pa.binary_view()], ids=lambda kind: str(kind)
)
def test_binary_types_mask_the_secrets_utf8_bytes(kind: pa.DataType) -> None:
    column = masked(pa.array([b"\x00" + SECRET_BYTES + b"\xff", None, b"kept"], type=kind))

    assert column.type == kind
    assert column.to_pylist() == [b"\x00" + MASK.encode() + b"\xff", None, b"kept"]


def test_non_ascii_secret_is_masked_in_binary_by_its_utf8_bytes() -> None:
    masker = Masker('{"token": "clé-secrète"}')

    table = masker.table(pa.table({"c": pa.array(["x clé-secrète".encode()])}))

    assert table.column(0).to_pylist() == [b"x " + MASK.encode()]


def test_fixed_size_binary_keeps_its_width_with_stars() -> None:
    kind = pa.binary(12)
    column = masked(pa.array([b"ab" + SECRET_BYTES + b"cd", None, b"kept-kept-12"], type=kind))

    assert column.type == kind
    assert column.to_pylist() == [b"ab********cd", None, b"kept-kept-12"]


def test_fixed_size_binary_narrower_than_every_secret_is_left_alone() -> None:
    array = pa.array([b"abc"], type=pa.binary(3))

    assert same_memory(masked(array).chunk(0), array)


def test_map_keys_and_items_are_masked_and_nulls_kept() -> None:
    array = pa.array([[("k", SECRET), (SECRET, "v")], None, [("kept", "v")]], type=TEXT_MAP)

    column = masked(array)

    assert column.type == TEXT_MAP
    assert column.to_pylist() == [[("k", MASK), (MASK, "v")], None, [("kept", "v")]]


@pytest.mark.parametrize(
    "kind",
    [
        pa.list_(pa.string()),
        pa.large_list(pa.string()),
        pa.list_(pa.string(), 2),
        pa.list_view(pa.string()),
        pa.large_list_view(pa.string()),
    ],
    ids=lambda kind: str(kind),
)
def test_every_kind_of_list_is_masked_also_when_sliced(kind: pa.DataType) -> None:
    array = pa.array([[SECRET, "a"], None, ["b", f"x{SECRET}"], ["c", "d"]], type=kind)

    column = masked(array.slice(1, 2))

    assert column.type == kind
    assert column.to_pylist() == [None, ["b", f"x{MASK}"]]


def test_list_of_dictionary_of_binary_is_masked() -> None:
    dictionary = pa.array([SECRET_BYTES, b"kept"]).dictionary_encode()
    array = pa.ListArray.from_arrays(pa.array([0, 1, 2], pa.int32()), dictionary)

    column = masked(array)

    assert column.type == array.type
    assert column.to_pylist() == [[MASK.encode()], [b"kept"]]


def test_dictionary_keeps_indices_nulls_and_order_flag() -> None:
    dictionary = pa.array([SECRET, "kept"])
    indices = pa.array([1, None, 0, 0], type=pa.int8())
    array = pa.DictionaryArray.from_arrays(indices, dictionary, ordered=True)

    column = masked(array)

    assert column.type == array.type
    assert column.to_pylist() == ["kept", None, MASK, MASK]


def test_struct_of_map_sliced_with_nulls_is_masked() -> None:
    kind = pa.struct([("m", TEXT_MAP), ("s", pa.string())])
    array = pa.array(
        [{"m": [("k", SECRET)], "s": "a"}, None, {"m": None, "s": SECRET}], type=kind
    ).slice(1)

    column = masked(array)

    assert column.type == kind
    assert column.to_pylist() == [None, {"m": None, "s": MASK}]


@pytest.mark.parametrize("offset", [0, 1])
def test_sparse_union_masks_every_child_slot(offset: int) -> None:
    children = [pa.array(["kept", SECRET, "x"]), pa.array([SECRET_BYTES, b"b", SECRET_BYTES])]
    array = pa.UnionArray.from_sparse(pa.array([0, 0, 1], type=pa.int8()), children)

    column = masked(array.slice(offset))

    assert column.type == array.type
    assert column.to_pylist() == ["kept", MASK, MASK.encode()][offset:]


def test_dense_union_masks_children_and_field_names() -> None:
    array = pa.UnionArray.from_dense(
        pa.array([5, 3, 5], type=pa.int8()),
        pa.array([0, 0, 1], type=pa.int32()),
        [pa.array([7]), pa.array([{"s": SECRET}, None])],
        ["number", SECRET],
        [3, 5],
    )

    column = masked(array.slice(1))

    assert column.type == pa.dense_union(
        [pa.field("number", pa.int64()), pa.field(MASK, pa.struct([("s", pa.string())]))],
        type_codes=[3, 5],
    )
    assert column.to_pylist() == [7, None]
    assert masked(array).to_pylist() == [{"s": MASK}, 7, None]


def test_run_end_encoded_values_are_masked() -> None:
    array = pa.RunEndEncodedArray.from_arrays([2, 3, 5], pa.array([SECRET, None, "kept"]))

    column = masked(array.slice(1))

    assert column.type == array.type
    assert column.to_pylist() == [MASK, None, "kept", "kept"]


def test_nested_field_names_and_field_metadata_are_masked() -> None:
    item = pa.field(SECRET, pa.string(), metadata={b"note": b"x" + SECRET_BYTES})
    kind = pa.list_(item)

    column = masked(pa.array([["kept"]], type=kind))

    assert column.type.value_field.name == MASK
    assert column.type.value_field.metadata == {b"note": b"x" + MASK.encode()}
    assert column.to_pylist() == [["kept"]]


def test_extension_storage_is_masked_and_the_extension_kept() -> None:
    array = pa.ExtensionArray.from_storage(Smuggler(b"plain"), pa.array([SECRET_BYTES, b"kept"]))

    column = masked(array)

    assert column.type == Smuggler(b"plain")
    assert column.chunk(0).storage.to_pylist() == [MASK.encode(), b"kept"]


def test_canonical_extensions_are_masked_and_kept() -> None:
    uuids = masked(pa.array([SECRET_BYTES * 2, b"0123456789abcdef"], type=pa.uuid()))
    documents = masked(pa.array([f'{{"a": "{SECRET}"}}'], type=pa.json_()))

    assert uuids.type == pa.uuid() and documents.type == pa.json_()
    assert uuids.chunk(0).storage.to_pylist()[0] == b"*" * 16
    assert documents.to_pylist() == [f'{{"a": "{MASK}"}}']


def test_extension_whose_type_holds_a_secret_becomes_its_masked_storage() -> None:
    smuggled = pa.ExtensionArray.from_storage(Smuggler(SECRET_BYTES), pa.array([b"kept"]))
    opaque = pa.ExtensionArray.from_storage(
        pa.opaque(pa.string(), type_name=SECRET, vendor_name="v"), pa.array([SECRET])
    )

    assert masked(smuggled).type == pa.binary()
    assert masked(smuggled).to_pylist() == [b"kept"]
    assert masked(opaque).type == pa.string()
    assert masked(opaque).to_pylist() == [MASK]


def test_types_without_text_pass_as_they_are() -> None:
    arrays = [
        pa.nulls(2),
        pa.array([True, None]),
        pa.array([1, None], type=pa.int8()),
        pa.array([1.5, None], type=pa.float16()),
        pa.array([Decimal("1.25"), None], type=pa.decimal128(5, 2)),
        pa.array([dt.date(2024, 1, 2), None]),
        pa.array([dt.datetime(2024, 1, 2, 3), None], type=pa.timestamp("us", tz="UTC")),
        pa.array([dt.time(1, 2), None]),
        pa.array([dt.timedelta(seconds=3), None]),
        pa.array([pa.MonthDayNano([1, 2, 3]), None], type=pa.month_day_nano_interval()),
        pa.array([[1, 2], None], type=pa.list_(pa.int64())),
        pa.array([{"n": 1}, None]),
    ]
    masker = Masker(f'{{"token": "{SECRET}"}}')

    for array in arrays:
        table = pa.table({"c": array})
        assert same_memory(masker.table(table).column(0).chunk(0), array), array.type


def test_empty_columns_of_every_nested_type_get_their_masked_type() -> None:
    kind = pa.sparse_union([pa.field(SECRET, pa.string())])

    column = masked(pa.chunked_array([], type=kind))

    assert column.type == pa.sparse_union([pa.field(MASK, pa.string())])
    assert column.num_chunks == 0


def test_chunked_columns_are_masked_chunk_by_chunk() -> None:
    column = masked(pa.chunked_array([[SECRET], ["kept", None]], type=pa.large_string()))

    assert column.num_chunks == 2
    assert column.to_pylist() == [MASK, "kept", None]


class ForgetfulMasker(Masker):
    """A masker that does not know unions, as it would not know a type a later Arrow adds."""

    def _array(self, array: pa.Array, column: str) -> pa.Array:
        if pa.types.is_union(array.type):
            return self._unmaskable(array, column)
        return super()._array(array, column)


def test_a_type_masking_cannot_look_into_is_refused_naming_the_column() -> None:
    union = pa.UnionArray.from_sparse(pa.array([0], type=pa.int8()), [pa.array([SECRET])])
    table = pa.table({f"col {SECRET}": pa.array([[{"u": SECRET}]]), "plain": ["a"]})
    table = table.append_column("unions", pa.ListArray.from_arrays([0, 1], union))

    with pytest.raises(UnmaskableColumn) as raised:
        ForgetfulMasker(f'{{"token": "{SECRET}"}}').table(table)

    assert "'unions'" in str(raised.value) and "sparse_union" in str(raised.value)
    assert SECRET not in str(raised.value)
