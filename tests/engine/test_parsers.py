"""Bytes chunks parsed into tables: csv, jsonl, parquet, lines; previews that stop early."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector_engine.parsers import iter_chunks, parse_bytes, read_chunks_table
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
