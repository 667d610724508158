"""Parse the chunks a `read_bytes` reader yields into an Arrow table with the connector's parser.

Chunks may be bytes-like or str (UTF-8 encoded) in any mix. `csv` reads like pandas and Spark do:
empty fields are null, quoted fields may hold newlines, and the connector's parser options
(`CsvOptions`: delimiter, quote, header, encoding, null values, rows to skip) say the rest;
without a header, columns are named `_c0`, `_c1`, ... as Spark names them. `jsonl` wants one JSON
object per line (blank lines skipped; nested objects stay structs, lists stay lists); `parquet`
is one whole file; `lines` gives one string column "line" (UTF-8, bad bytes replaced, \\r\\n
trimmed). A preview of csv/jsonl/lines stops pulling chunks once it has more than row_limit rows.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from connector_engine.protocol import ErrorType, Parser
from connector_engine.user_code import ConnectorError
from connector_engine.values import describe

LINE_COLUMN = "line"


def iter_chunks(chunks: Any, reader_name: str = "read_bytes") -> Iterator[bytes]:
    """Yield reader chunks as bytes; str is UTF-8 encoded, other types are an error."""
    if chunks is None:
        raise ConnectorError(
            ErrorType.CONTRACT_ERROR, f"{reader_name} returned None; it must yield bytes"
        )
    if isinstance(chunks, (bytes, bytearray, memoryview, str)):
        chunks = [chunks]  # a reader that returns one whole payload is accepted as one chunk
    try:
        iterator = iter(chunks)
    except TypeError:
        raise ConnectorError(
            ErrorType.CONTRACT_ERROR,
            f"{reader_name} returned {describe(chunks)}, which is not iterable; it must yield "
            "bytes or str chunks",
        ) from None
    for index, chunk in enumerate(iterator):
        if isinstance(chunk, bytes):
            yield chunk
        elif isinstance(chunk, str):
            yield chunk.encode("utf-8")
        elif isinstance(chunk, (bytearray, memoryview)):
            yield bytes(chunk)
        else:
            raise ConnectorError(
                ErrorType.CONTRACT_ERROR,
                f"{reader_name} yielded {describe(chunk)} as chunk {index}; chunks must be "
                "bytes or str",
            )


@dataclass(frozen=True)
class CsvOptions:
    """How the csv parser reads: the connector's parser options, checked."""

    delimiter: str = ","
    quote: str = '"'  # "" reads quotes as ordinary characters
    header: bool = True  # False: the first row is data, columns are _c0, _c1, ...
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = ("",)  # fields read as null (empty ones, like pandas, Spark)
    skip_rows: int = 0  # lines skipped before the header (or the first row)

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> CsvOptions:
        """Check the connector's options; a bad one is a ConfigurationError naming it."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise _bad_option(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")
        chosen = cls(**options)
        for name in ("delimiter", "quote"):
            value = getattr(chosen, name)
            allowed = (1,) if name == "delimiter" else (0, 1)
            if not isinstance(value, str) or len(value) not in allowed or value in ("\r", "\n"):
                raise _bad_option(f"{name} must be one character, not {value!r}")
        if chosen.quote == chosen.delimiter:
            raise _bad_option("the quote and the delimiter must differ")
        if not isinstance(chosen.header, bool):
            raise _bad_option(f"header must be true or false, not {chosen.header!r}")
        if not isinstance(chosen.skip_rows, int) or isinstance(chosen.skip_rows, bool):
            raise _bad_option(f"skip_rows must be a whole number, not {chosen.skip_rows!r}")
        if chosen.skip_rows < 0:
            raise _bad_option(f"skip_rows must be 0 or more, not {chosen.skip_rows}")
        nulls = chosen.null_values
        if not isinstance(nulls, list | tuple) or not all(isinstance(v, str) for v in nulls):
            raise _bad_option(f"null_values must be a list of strings, not {nulls!r}")
        try:
            codecs.lookup(str(chosen.encoding))
        except LookupError:
            raise _bad_option(f"unknown encoding {chosen.encoding!r}") from None
        return cls(**{**options, "null_values": tuple(nulls)})

    @property
    def lines_before_rows(self) -> int:
        return self.skip_rows + int(self.header)


def _bad_option(problem: str) -> ConnectorError:
    return ConnectorError(ErrorType.CONFIGURATION_ERROR, f"CSV parser option: {problem}")


def parser_options(parser: str, options: Mapping[str, Any] | None) -> Any:
    """The checked options of `parser` (CsvOptions for csv); other parsers take none."""
    if parser == Parser.CSV:
        return CsvOptions.from_options(options)
    if options:
        raise ConnectorError(ErrorType.CONFIGURATION_ERROR, f"The {parser} parser takes no options")
    return None


def parse_bytes(data: bytes, parser: str, options: Mapping[str, Any] | None = None) -> pa.Table:
    """Parse a whole payload with the connector's parser and its options."""
    parse = CHUNK_PARSERS.get(parser)
    if parse is None:
        raise ConnectorError(
            ErrorType.CONFIGURATION_ERROR,
            f"Unknown parser {parser!r}: use one of {', '.join(CHUNK_PARSERS)}",
        )
    checked = parser_options(parser, options)
    try:
        return parse(data, checked)
    except ConnectorError:
        raise
    except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
        raise ConnectorError(
            ErrorType.PARSE_ERROR, f"Could not parse the bytes as {parser}: {exc}"
        ) from None


def parse_csv(data: bytes, options: CsvOptions | None = None) -> pa.Table:
    """Parse CSV as the options say; empty input is an empty table."""
    options = options or CsvOptions()
    if not data.strip():
        return pa.table({})
    table = pa_csv.read_csv(
        pa.BufferReader(data),
        read_options=pa_csv.ReadOptions(
            encoding=options.encoding,
            skip_rows=options.skip_rows,
            autogenerate_column_names=not options.header,
        ),
        parse_options=pa_csv.ParseOptions(
            delimiter=options.delimiter,
            quote_char=options.quote or False,
            newlines_in_values=True,
        ),
        convert_options=pa_csv.ConvertOptions(
            null_values=list(options.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    if not options.header:
        table = table.rename_columns([f"_c{i}" for i in range(table.num_columns)])
    return table


def parse_jsonl(data: bytes, options: None = None) -> pa.Table:
    """Parse JSON Lines; fall back to Python when Arrow rejects mixed types."""
    if not data.strip():
        return pa.table({})
    try:
        return pa_json.read_json(pa.BufferReader(data))
    except pa.ArrowInvalid:
        pass  # mixed types across rows, or a syntax error: the slow path says which line
    rows = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ConnectorError(
                ErrorType.PARSE_ERROR, f"Line {number} is not valid JSON: {exc}"
            ) from None
        if not isinstance(row, dict):
            raise ConnectorError(
                ErrorType.PARSE_ERROR,
                f"Line {number} is a JSON {type(row).__name__}, not an object: jsonl needs "
                "one object per line",
            )
        rows.append(row)
    return rows_to_table(rows)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Build a table from dict rows; columns of mixed types become strings."""
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            names.setdefault(key, None)
    arrays = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays.append(pa.array([_to_text(v) for v in values], type=pa.string()))
    return pa.Table.from_arrays(arrays, names=list(names))


def _to_text(value: Any) -> str | None:
    """Return a cell as text: JSON for containers, str for scalars."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def parse_parquet(data: bytes, options: None = None) -> pa.Table:
    """Parse one whole Parquet file."""
    return pq.read_table(pa.BufferReader(data))


def parse_lines(data: bytes, options: None = None) -> pa.Table:
    """Parse text into one string column, one row per line."""
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    return pa.table({LINE_COLUMN: pa.array(lines, type=pa.string())})


# The function behind each of protocol.Parser's names.
CHUNK_PARSERS: dict[str, Callable[[bytes, Any], pa.Table]] = {
    Parser.CSV: parse_csv,
    Parser.JSONL: parse_jsonl,
    Parser.PARQUET: parse_parquet,
    Parser.LINES: parse_lines,
}
# Parsers whose rows end at newlines (roughly, for csv), so a preview may stop early.
_LINE_BASED = {Parser.CSV, Parser.JSONL, Parser.LINES}


def read_chunks_table(
    chunks: Iterable[bytes],
    parser: str,
    row_limit: int | None,
    options: Mapping[str, Any] | None = None,
) -> tuple[pa.Table, bool]:
    """Parse chunks into a table of at most row_limit rows; return (table, stopped early).

    For line-based parsers a preview stops pulling chunks once it has more than row_limit
    rows; row_limit None reads everything.
    """
    if row_limit is None or parser not in _LINE_BASED:
        return parse_bytes(b"".join(chunks), parser, options), False
    checked = parser_options(parser, options)
    buffer = io.BytesIO()
    newlines = 0
    before_rows = checked.lines_before_rows if isinstance(checked, CsvOptions) else 0
    wanted = row_limit + before_rows + 1
    for chunk in chunks:
        buffer.write(chunk)
        newlines += chunk.count(b"\n")
        if newlines > wanted:
            table = _parse_complete_lines(buffer.getvalue(), parser, options)
            if table is not None and table.num_rows > row_limit:
                return table, True
            wanted *= 2  # quoted newlines in csv or blank lines: pull more and retry
    return parse_bytes(buffer.getvalue(), parser, options), False


def _parse_complete_lines(
    data: bytes, parser: str, options: Mapping[str, Any] | None
) -> pa.Table | None:
    """Parse data up to its last newline; None when that cut is not parseable."""
    complete = data[: data.rfind(b"\n") + 1]
    try:
        return parse_bytes(complete, parser, options)
    except ConnectorError:
        return None
