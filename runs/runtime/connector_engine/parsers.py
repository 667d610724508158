"""Parse the chunks a `read_bytes` reader yields into an Arrow table with the connector's parser.

Chunks may be bytes-like or str (UTF-8 encoded) in any mix. `csv` uses the first line as header;
`jsonl` wants one JSON object per line (blank lines skipped); `parquet` is one whole file;
`lines` gives one string column "line" (UTF-8, bad bytes replaced, \\r\\n trimmed). A preview of
csv/jsonl/lines stops pulling chunks once it has more than row_limit rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
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


def parse_bytes(data: bytes, parser: str) -> pa.Table:
    """Parse a whole payload with the connector's parser."""
    parse = CHUNK_PARSERS.get(parser)
    if parse is None:
        raise ConnectorError(
            ErrorType.CONFIGURATION_ERROR,
            f"Unknown parser {parser!r}: use one of {', '.join(CHUNK_PARSERS)}",
        )
    try:
        return parse(data)
    except ConnectorError:
        raise
    except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
        raise ConnectorError(
            ErrorType.PARSE_ERROR, f"Could not parse the bytes as {parser}: {exc}"
        ) from None


def parse_csv(data: bytes) -> pa.Table:
    """Parse CSV with a header line; empty input is an empty table."""
    if not data.strip():
        return pa.table({})
    return pa_csv.read_csv(pa.BufferReader(data))


def parse_jsonl(data: bytes) -> pa.Table:
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


def parse_parquet(data: bytes) -> pa.Table:
    """Parse one whole Parquet file."""
    return pq.read_table(pa.BufferReader(data))


def parse_lines(data: bytes) -> pa.Table:
    """Parse text into one string column, one row per line."""
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    return pa.table({LINE_COLUMN: pa.array(lines, type=pa.string())})


# The function behind each of protocol.Parser's names.
CHUNK_PARSERS: dict[str, Callable[[bytes], pa.Table]] = {
    Parser.CSV: parse_csv,
    Parser.JSONL: parse_jsonl,
    Parser.PARQUET: parse_parquet,
    Parser.LINES: parse_lines,
}
# Parsers whose rows end at newlines (roughly, for csv), so a preview may stop early.
_LINE_BASED = {Parser.CSV: 1, Parser.JSONL: 0, Parser.LINES: 0}  # header lines before row 1


def read_chunks_table(
    chunks: Iterable[bytes], parser: str, row_limit: int | None
) -> tuple[pa.Table, bool]:
    """Parse chunks into a table of at most row_limit rows; return (table, stopped early).

    For line-based parsers a preview stops pulling chunks once it has more than row_limit
    rows; row_limit None reads everything.
    """
    if row_limit is None or parser not in _LINE_BASED:
        return parse_bytes(b"".join(chunks), parser), False
    buffer = io.BytesIO()
    newlines = 0
    wanted = row_limit + _LINE_BASED[parser] + 1
    for chunk in chunks:
        buffer.write(chunk)
        newlines += chunk.count(b"\n")
        if newlines > wanted:
            table = _parse_complete_lines(buffer.getvalue(), parser)
            if table is not None and table.num_rows > row_limit:
                return table, True
            wanted *= 2  # quoted newlines in csv or blank lines: pull more and retry
    return parse_bytes(buffer.getvalue(), parser), False


def _parse_complete_lines(data: bytes, parser: str) -> pa.Table | None:
    """Parse data up to its last newline; None when that cut is not parseable."""
    complete = data[: data.rfind(b"\n") + 1]
    try:
        return parse_bytes(complete, parser)
    except ConnectorError:
        return None
