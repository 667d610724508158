"""Attack: a connector hides its own credentials inside every kind of Arrow column it can return.

The reader builds map, binary, fixed-size-list, large-list, union, struct-of-map,
dictionary-of-binary, run-end-encoded, view and extension columns (and nested field names and
extension metadata) that carry the secret, and returns them in a pandas DataFrame through the
real sandbox. Neither the Arrow table that comes back nor the preview rows may hold the secret,
in a preview or a full read; the values around it must survive.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest

from connector_engine.masking import MASK
from connector_engine.protocol import Limits, SandboxRequest, SandboxResult
from connector_engine.sandbox import Sandbox, run_action

SECRET = "tok-S3cret-9f2Q"  # 15 characters; SECRET16 fills a UUID exactly
SECRET16 = "uuid-S3cret-77ab"
CREDENTIALS = json.dumps({"token": SECRET, "device": SECRET16, "region": "eu"})

CONNECTOR = """
import json

import pandas as pd
import pyarrow as pa


class Smuggler(pa.ExtensionType):
    # An extension type the host has never heard of; its metadata carries the secret too.
    def __init__(self, note=b""):
        self.note = note
        super().__init__(pa.binary(), "attack.smuggler")

    def __arrow_ext_serialize__(self):
        return self.note

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls(serialized)


def context(credentials):
    return json.loads(credentials)


def list_objects(context, metadata):
    yield {"name": "loot", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    s = context["token"]
    b = s.encode()
    u = context["device"].encode()
    text_map = pa.map_(pa.string(), pa.string())
    columns = {
        "id": pa.array([1, 2]),
        "map": pa.array([[("k", "x-" + s), (s, "v")], [("keep", "map-ok")]], type=text_map),
        "binary": pa.array([b"<" + b + b">", b"bin-ok"], type=pa.binary()),
        "large_binary": pa.array([b, b"lb-ok"], type=pa.large_binary()),
        "binary_view": pa.array([b + b"!", b"bv-ok"], type=pa.binary_view()),
        "fixed_binary": pa.array([b"ab" + b + b"cd", b"fixed-binary-okay-00"[:19]], pa.binary(19)),
        "fixed_list": pa.array([[s, "fl-ok"], ["a", None]], type=pa.list_(pa.string(), 2)),
        "large_list": pa.array([["ll-ok", "y" + s]], type=pa.large_list(pa.string())).take([0, 0]),
        "list_view": pa.array([[s], ["lv-ok"]], type=pa.list_view(pa.string())),
        "named_list": pa.array([["nl-ok"], []], type=pa.list_(pa.field(s, pa.string()))),
        "sparse_union": pa.UnionArray.from_sparse(
            pa.array([0, 1], type=pa.int8()),
            [pa.array([s + "!", "su-ok"]), pa.array([b"su-bin", b])],
        ),
        "dense_union": pa.UnionArray.from_dense(
            pa.array([1, 0], type=pa.int8()),
            pa.array([0, 0], type=pa.int32()),
            [pa.array([7]), pa.array([{"inner": "z" + s}])],
            ["number", s],
        ),
        "struct_of_map": pa.array(
            [{"m": [("k", s)], "ok": "som-ok"}, {"m": None, "ok": None}],
            type=pa.struct([("m", text_map), ("ok", pa.string())]),
        ),
        "dict_binary": pa.array([b, b"db-ok"], type=pa.binary()).dictionary_encode(),
        "run_end": pa.RunEndEncodedArray.from_arrays([1, 2], pa.array([s, "ree-ok"])),
        "string_view": pa.array(["sv " + s, "sv-ok"], type=pa.string_view()),
        "extension": pa.ExtensionArray.from_storage(Smuggler(b), pa.array([b"e" + b, b"ext-ok"])),
        "uuid": pa.array([u, b"0123456789abcdef"], type=pa.uuid()),
        "opaque": pa.ExtensionArray.from_storage(
            pa.opaque(pa.string(), type_name=s, vendor_name="attack"),
            pa.array(["op-ok", None]),
        ),
    }
    return pd.DataFrame(
        {name: pd.Series(array, dtype=pd.ArrowDtype(array.type)) for name, array in columns.items()}
    )
"""

# The values that are not secret, and must come back as they were.
KEPT = [
    "map-ok", "bin-ok", "lb-ok", "bv-ok", "fl-ok", "ll-ok", "lv-ok", "nl-ok", "su-ok",
    "su-bin", "som-ok", "db-ok", "ree-ok", "sv-ok", "ext-ok", "op-ok",
]  # fmt: skip


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(use_bwrap=shutil.which("bwrap") is not None)
    yield box
    box.stop()


def read(sandbox: Sandbox, *, full_table: bool) -> SandboxResult:
    request = SandboxRequest(
        action="read",
        code=CONNECTOR,
        credentials=CREDENTIALS,
        secret_fields=["token", "device"],  # the owner's choice ("device" is not secret by name)
        full_table=full_table,
        limits=Limits(timeout_s=60, memory_mb=1024),
    )
    result = run_action(request, sandbox=sandbox)
    assert result.ok, result.error
    return result


def leaks(data: bytes) -> list[str]:
    """Return which secrets (as UTF-8 bytes) appear in the data."""
    return [secret for secret in (SECRET, SECRET16) if secret.encode() in data]


@pytest.mark.parametrize("full_table", [False, True], ids=["preview", "full-table"])
def test_secrets_hidden_in_any_column_type_are_masked(sandbox: Sandbox, full_table: bool) -> None:
    result = read(sandbox, full_table=full_table)
    table = pa.ipc.open_stream(result.table).read_all()
    everything = result.table + json.dumps(result.to_json()).encode()

    assert leaks(everything) == []
    assert leaks(repr(table.to_pylist()).encode()) == []
    for kept in KEPT:
        assert kept.encode() in result.table, kept
    assert table.column("id").to_pylist() == [1, 2]
    assert table.column("binary").to_pylist() == [f"<{MASK}>".encode(), b"bin-ok"]
    assert table.column("fixed_binary").type == pa.binary(19)
    assert table.column("fixed_binary").to_pylist()[0] == b"ab" + b"*" * len(SECRET) + b"cd"
    assert table.column("map").to_pylist() == [
        [("k", f"x-{MASK}"), (MASK, "v")],
        [("keep", "map-ok")],
    ]
    assert table.column("struct_of_map").to_pylist()[0] == {"m": [("k", MASK)], "ok": "som-ok"}
    assert table.column("run_end").to_pylist() == [MASK, "ree-ok"]
    assert table.column("uuid").to_pylist()[1] == uuid.UUID(bytes=b"0123456789abcdef")
    if not full_table:
        rows = result.result["rows"]
        assert rows[1][table.column_names.index("map")] == [["keep", "map-ok"]]
        assert rows[0][table.column_names.index("fixed_list")] == [MASK, "fl-ok"]
