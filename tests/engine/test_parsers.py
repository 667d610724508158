"""Bytes chunks parsed into tables: csv, jsonl, parquet, lines; previews that stop early."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector_engine.parsers import iter_chunks, parse_bytes, read_chunks_table
from connector_engine.protocol import ErrorType
from connector_engine.user_code import ConnectorError


def parse_chunks(chunks, parser, row_limit=None):
    table, _ = read_chunks_table(iter_chunks(chunks), parser, row_limit)
    return table


def test_csv_from_mixed_str_and_bytes_chunks():
    table = parse_chunks(["a,b\n1,", b"x\n2,y\n", bytearray(b"3,z\n")], "csv")
    assert table.column("a").to_pylist() == [1, 2, 3]
    assert table.column("b").to_pylist() == ["x", "y", "z"]


def test_jsonl_with_blank_lines():
    table = parse_chunks([b'{"a": 1, "b": "x"}\n\n', '{"a": 2}\n'], "jsonl")
    assert table.to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]


def test_jsonl_with_mixed_types_falls_back_to_strings():
    table = parse_chunks([b'{"a": 1}\n{"a": "x"}\n'], "jsonl")
    assert table.column("a").to_pylist() == ["1", "x"]


def test_jsonl_line_that_is_not_an_object():
    with pytest.raises(ConnectorError, match="Line 2 is a JSON list"):
        parse_chunks([b'{"a": 1}\n[1, 2]\n'], "jsonl")


def test_parquet_chunks():
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3]}), sink)
    data = sink.getvalue()
    table = parse_chunks([data[:10], data[10:]], "parquet")
    assert table.column("a").to_pylist() == [1, 2, 3]


def test_lines_parser_trims_line_endings_and_replaces_bad_utf8():
    table = parse_chunks(["one\r\ntw", b"o\n\xff\n"], "lines")
    assert table.column("line").to_pylist() == ["one", "two", "\ufffd"]


def test_chunk_of_another_type_names_its_type_and_index():
    with pytest.raises(ConnectorError, match="yielded a dict as chunk 2"):
        parse_chunks([b"a\n", "1\n", {"x": 1}], "csv")


def test_reader_returning_one_bytes_payload_is_one_chunk():
    assert parse_chunks(b"a\n1\n", "csv").num_rows == 1


def test_empty_csv_is_an_empty_table():
    assert parse_chunks([], "csv").num_rows == 0


def test_parse_errors_are_parse_errors():
    with pytest.raises(ConnectorError) as caught:
        parse_bytes(b"not parquet", "parquet")
    assert caught.value.type == "ParseError"
    with pytest.raises(ConnectorError, match="Unknown parser"):
        parse_bytes(b"", "xml")


def test_preview_stops_pulling_chunks_early():
    pulled = []

    def chunks():
        yield b"a\n"
        for index in range(100_000):
            pulled.append(index)
            yield f"{index}\n".encode()

    table, stopped = read_chunks_table(iter_chunks(chunks()), "csv", 10)
    assert stopped
    assert table.num_rows > 10
    assert len(pulled) < 100


def test_preview_of_csv_with_quoted_newlines_retries():
    rows = "".join(f'{i},"multi\nline\nvalue"\n' for i in range(50))
    chunks = ["a,b\n", *rows.splitlines(keepends=True)]  # cuts fall inside quoted values
    table, stopped = read_chunks_table(iter_chunks(chunks), "csv", 5)
    assert stopped
    assert table.num_rows > 5
    assert table.column("a").to_pylist()[:3] == [0, 1, 2]
    assert table.column("b")[0].as_py() == "multi\nline\nvalue"


# ---------------------------------------------------------------- CSV like pandas and Spark


def test_csv_empty_fields_are_null_like_pandas_and_spark() -> None:
    table = parse_bytes(b'name,city,n\nann,,1\n,"",\nbob,paris,3\n', "csv")

    assert table.column("name").to_pylist() == ["ann", None, "bob"]
    assert table.column("city").to_pylist() == [None, None, "paris"]
    assert table.column("n").to_pylist() == [1, None, 3]


def test_csv_quoted_newlines_stay_in_their_field() -> None:
    table = parse_bytes(b'id,note\n1,"two\nlines"\n2,plain\n', "csv")

    assert table.column("note").to_pylist() == ["two\nlines", "plain"]


def test_csv_options_delimiter_quote_null_values_and_skipped_rows() -> None:
    data = b"exported 2026-12-05\nid;name\n1;'a;b'\n2;NA\n"
    options = {"delimiter": ";", "quote": "'", "null_values": ["", "NA"], "skip_rows": 1}

    table = parse_bytes(data, "csv", options)

    assert table.column_names == ["id", "name"]
    assert table.column("name").to_pylist() == ["a;b", None]


def test_csv_without_header_names_columns_as_spark_does() -> None:
    table = parse_bytes(b"1,a\n2,b\n", "csv", {"header": False})

    assert table.column_names == ["_c0", "_c1"]
    assert table.column("_c1").to_pylist() == ["a", "b"]


def test_csv_in_latin_1() -> None:
    table = parse_bytes("ville\nMontréal\n".encode("latin-1"), "csv", {"encoding": "latin-1"})

    assert table.column("ville").to_pylist() == ["Montréal"]


def test_csv_empty_strings_stay_when_no_value_is_null() -> None:
    table = parse_bytes(b"a,b\nx,\n", "csv", {"null_values": []})

    assert table.column("b").to_pylist() == [""]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": ";;"}, "delimiter must be one character"),
        ({"sep": ";"}, "unknown option 'sep'"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"skip_rows": -1}, "skip_rows must be 0 or more"),
        ({"header": "yes"}, "header must be true or false"),
        ({"null_values": "NA"}, "null_values must be a list of strings"),
    ],
)
def test_bad_csv_options_are_a_clear_configuration_error(options, message) -> None:
    with pytest.raises(ConnectorError) as raised:
        parse_bytes(b"a\n1\n", "csv", options)

    assert raised.value.type == ErrorType.CONFIGURATION_ERROR
    assert message in str(raised.value)


def test_a_csv_preview_stops_early_after_skipped_rows_and_header() -> None:
    lines = [b"junk\n", b"id\n"] + [f"{i}\n".encode() for i in range(1000)]

    table, stopped = read_chunks_table(iter(lines), "csv", 5, {"skip_rows": 1})

    assert stopped and table.column("id").to_pylist()[:5] == [0, 1, 2, 3, 4]


def test_jsonl_keeps_nested_objects_as_structs() -> None:
    table = parse_bytes(b'{"id": 1, "geo": {"lat": 1.5, "tags": ["a"]}}\n', "jsonl")

    assert pa.types.is_struct(table.schema.field("geo").type)
    assert table.column("geo").to_pylist() == [{"lat": 1.5, "tags": ["a"]}]
