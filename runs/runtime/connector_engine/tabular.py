"""Turn reader output into Arrow tables, JSON rows and comparable schemas.

Decisions:
- DataFrames convert with preserve_index=False (call reset_index() to keep an index). An object
  column Arrow cannot type (e.g. ints mixed with strings) becomes a string column: each value is
  str()-ed, None/NaN stay null. Non-string column names become str(); duplicate names are an error.
- Readable type names: int64, float64, string, bool, binary, date, timestamp[us],
  timestamp[us, tz=UTC], decimal(10,2), list<int64>, struct<a: int64>, map<string, int64>.
- `json_rows`: NaN/NaT/None -> null, +-inf -> "Infinity"/"-Infinity", dates and timestamps ->
  ISO 8601 strings, time -> ISO, durations -> str(timedelta), Decimal -> str, bytes -> base64
  text, lists/structs -> lists/dicts, maps -> lists of [key, value].
- Bytes parsers: chunks may be bytes-like or str (UTF-8 encoded) in any mix. `csv` uses the first
  line as header; `jsonl` wants one JSON object per line (blank lines skipped); `parquet` is one
  whole file; `lines` gives one string column "line" (UTF-8, bad bytes replaced, \\r\\n trimmed).
  A preview of csv/jsonl/lines stops pulling chunks once it has more than row_limit rows.
- Schemas are lists of {"name", "type", "nullable"}. A declared schema's nullable is what it
  declares; a sampled schema's nullable is "nulls were seen in the sample", so only a declared
  non-nullable column with sampled nulls is a nullability difference.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from connector_engine.child.errors import ConnectorError
from connector_engine.values import describe, json_float, json_safe

LINE_COLUMN = "line"

# ---------------------------------------------------------------- DataFrame -> Arrow


def dataframe_to_table(df: pd.DataFrame) -> pa.Table:
    """Convert a DataFrame to Arrow, stringifying object columns Arrow cannot type."""
    df = _with_string_column_names(df)
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        pass  # some column has values of mixed types; fix column by column below
    arrays, names = [], []
    for name in df.columns:
        arrays.append(_column_to_array(df[name]))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def _with_string_column_names(df: pd.DataFrame) -> pd.DataFrame:
    """Return df with str column names; reject duplicates, which Arrow cannot store."""
    names = [_column_name(c) for c in df.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConnectorError(
            "DataError", f"The DataFrame has duplicate column names: {', '.join(duplicates)}"
        )
    if names == list(df.columns):
        return df
    renamed = df.copy(deep=False)
    renamed.columns = names
    return renamed


def _column_name(column: Any) -> str:
    """Return a column label as a string; MultiIndex tuples join with '.'."""
    if isinstance(column, tuple):
        return ".".join(str(part) for part in column)
    return column if isinstance(column, str) else str(column)


def _column_to_array(series: pd.Series) -> pa.Array:
    """Convert one column; an untypeable object column becomes strings."""
    try:
        return pa.Array.from_pandas(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        values = [None if _is_missing(v) else str(v) for v in series.tolist()]
        return pa.array(values, type=pa.string())


def _is_missing(value: Any) -> bool:
    """Say whether a cell is None, NaN or NaT."""
    if value is None or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


# ---------------------------------------------------------------- type names and columns


def readable_type(dtype: pa.DataType) -> str:
    """Return a short, readable name for an Arrow type."""
    simple = _SIMPLE_TYPES.get(dtype.id)
    if simple is not None:
        return simple
    if pa.types.is_timestamp(dtype):
        return f"timestamp[{dtype.unit}, tz={dtype.tz}]" if dtype.tz else f"timestamp[{dtype.unit}]"
    if pa.types.is_time(dtype):
        return f"time[{dtype.unit}]"
    if pa.types.is_duration(dtype):
        return f"duration[{dtype.unit}]"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"list<{readable_type(dtype.value_type)}>"
    if pa.types.is_fixed_size_list(dtype):
        return f"list<{readable_type(dtype.value_type)}>"
    if pa.types.is_map(dtype):
        return f"map<{readable_type(dtype.key_type)}, {readable_type(dtype.item_type)}>"
    if pa.types.is_struct(dtype):
        fields = ", ".join(f"{f.name}: {readable_type(f.type)}" for f in dtype)
        return f"struct<{fields}>"
    if pa.types.is_dictionary(dtype):
        return readable_type(dtype.value_type)
    return str(dtype)


_SIMPLE_TYPES: dict[int, str] = {
    pa.null().id: "null",
    pa.bool_().id: "bool",
    pa.int8().id: "int8",
    pa.int16().id: "int16",
    pa.int32().id: "int32",
    pa.int64().id: "int64",
    pa.uint8().id: "uint8",
    pa.uint16().id: "uint16",
    pa.uint32().id: "uint32",
    pa.uint64().id: "uint64",
    pa.float16().id: "float16",
    pa.float32().id: "float32",
    pa.float64().id: "float64",
    pa.string().id: "string",
    pa.large_string().id: "string",
    pa.string_view().id: "string",
    pa.binary().id: "binary",
    pa.large_binary().id: "binary",
    pa.binary_view().id: "binary",
    pa.binary(1).id: "binary",
    pa.date32().id: "date",
    pa.date64().id: "date",
}


def table_columns(table: pa.Table | pa.Schema) -> list[dict[str, str]]:
    """Return [{"name", "type"}] for a table or schema."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    return [{"name": f.name, "type": readable_type(f.type)} for f in schema]


# ---------------------------------------------------------------- JSON rows


def column_profile(table: pa.Table) -> list[dict[str, Any]]:
    """Profile each column of `table`: null percentage, distinct count, min and max."""
    import pyarrow.compute as pc

    profile = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        entry: dict[str, Any] = {"name": name, "min": None, "max": None}
        rows = len(column)
        entry["null_pct"] = round(100.0 * column.null_count / rows, 1) if rows else 0.0
        try:
            entry["distinct"] = pc.count_distinct(column, mode="only_valid").as_py()
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            entry["distinct"] = None  # nested types have no distinct count
        if _orderable(column.type):
            extremes = pc.min_max(column)
            entry["min"] = json_safe(extremes["min"].as_py())
            entry["max"] = json_safe(extremes["max"].as_py())
        profile.append(entry)
    return profile


def _orderable(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_temporal(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
    )


def json_rows(table: pa.Table) -> list[list[Any]]:
    """Return the table's rows as lists of JSON-safe values."""
    columns = [_json_column(column.type, column.to_pylist()) for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _json_column(dtype: pa.DataType, values: list[Any]) -> list[Any]:
    """Convert one column's Python values to JSON-safe values."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_integer(dtype):
        return values
    if pa.types.is_boolean(dtype) or pa.types.is_null(dtype):
        return values
    if pa.types.is_floating(dtype):
        return [v if v is None else json_float(v) for v in values]
    if pa.types.is_map(dtype):
        return [v if v is None else [[json_safe(k), json_safe(x)] for k, x in v] for v in values]
    return [json_safe(v) for v in values]


# ---------------------------------------------------------------- bytes -> table


def iter_chunks(chunks: Any, reader_name: str = "read_bytes") -> Iterator[bytes]:
    """Yield reader chunks as bytes; str is UTF-8 encoded, other types are an error."""
    if chunks is None:
        raise ConnectorError("ContractError", f"{reader_name} returned None; it must yield bytes")
    if isinstance(chunks, (bytes, bytearray, memoryview, str)):
        chunks = [chunks]  # a reader that returns one whole payload is accepted as one chunk
    try:
        iterator = iter(chunks)
    except TypeError:
        raise ConnectorError(
            "ContractError",
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
                "ContractError",
                f"{reader_name} yielded {describe(chunk)} as chunk {index}; chunks must be "
                "bytes or str",
            )


def parse_bytes(data: bytes, parser: str) -> pa.Table:
    """Parse a whole payload with the connector's parser."""
    parse = PARSERS.get(parser)
    if parse is None:
        raise ConnectorError(
            "ConfigurationError",
            f"Unknown parser {parser!r}: use one of {', '.join(PARSERS)}",
        )
    try:
        return parse(data)
    except ConnectorError:
        raise
    except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
        raise ConnectorError(
            "ParseError", f"Could not parse the bytes as {parser}: {exc}"
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
            raise ConnectorError("ParseError", f"Line {number} is not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise ConnectorError(
                "ParseError",
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


PARSERS: dict[str, Callable[[bytes], pa.Table]] = {
    "csv": parse_csv,
    "jsonl": parse_jsonl,
    "parquet": parse_parquet,
    "lines": parse_lines,
}
# Parsers whose rows end at newlines (roughly, for csv), so a preview may stop early.
_LINE_BASED = {"csv": 1, "jsonl": 0, "lines": 0}  # header lines before the first row


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


# ---------------------------------------------------------------- schemas


def spark_schema_fields(struct: Any) -> list[dict[str, Any]]:
    """Return [{"name", "type", "nullable"}] of a pyspark StructType (no Spark session needed)."""
    return [
        {"name": f.name, "type": f.dataType.simpleString(), "nullable": bool(f.nullable)}
        for f in struct.fields
    ]


def arrow_schema_fields(schema: pa.Schema) -> list[dict[str, Any]]:
    """Return [{"name", "type", "nullable"}] of an Arrow schema, as declared."""
    return [{"name": f.name, "type": readable_type(f.type), "nullable": f.nullable} for f in schema]


def sampled_schema_fields(table: pa.Table) -> list[dict[str, Any]]:
    """Return the schema of sampled data; nullable means nulls were seen."""
    return [
        {
            "name": name,
            "type": readable_type(column.type),
            "nullable": column.null_count > 0,
        }
        for name, column in zip(table.column_names, table.columns, strict=True)
    ]


def pandas_schema_fields(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the declared schema of a DataFrame (its Arrow conversion's)."""
    return arrow_schema_fields(dataframe_to_table(df.head(1000)).schema)


# Spark simpleString names (and aliases) -> the canonical names used to compare schemas.
_CANONICAL_TYPES: dict[str, str] = {
    "tinyint": "int8",
    "byte": "int8",
    "smallint": "int16",
    "short": "int16",
    "int": "int32",
    "integer": "int32",
    "bigint": "int64",
    "long": "int64",
    "float": "float32",
    "real": "float32",
    "double": "float64",
    "string": "string",
    "large_string": "string",
    "utf8": "string",
    "boolean": "bool",
    "bool": "bool",
    "binary": "binary",
    "date": "date",
    "date32": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
    "timestamp_ltz": "timestamp",
    "void": "null",
    "null": "null",
}
_PARAMETRIC = re.compile(r"^(\w+)\s*[\[(](.*)[\])]$")


def canonical_type(name: str) -> str:
    """Map a Spark or Arrow type name to one spelling so both vocabularies compare equal."""
    text = name.strip().lower()
    generic = re.match(r"^(array|list|large_list|map|struct)\s*<(.*)>$", text, re.DOTALL)
    if generic:
        return _canonical_generic(generic.group(1), generic.group(2))
    parametric = _PARAMETRIC.match(text)
    if parametric:
        base, args = parametric.groups()
        if base in ("varchar", "char"):
            return "string"
        if base == "timestamp":
            return "timestamp"
        if base in ("decimal", "numeric"):
            return "decimal(" + ",".join(a.strip() for a in args.split(",")) + ")"
    if text in ("decimal", "numeric"):
        return "decimal(10,0)"  # Spark's default precision and scale
    return _CANONICAL_TYPES.get(text, text)


def _canonical_generic(kind: str, inner: str) -> str:
    """Canonicalise list/array, map and struct type names recursively."""
    parts = _split_top_level(inner)
    if kind in ("array", "list", "large_list"):
        item = parts[0].split(":", 1)[-1] if parts and parts[0].startswith("item:") else inner
        return f"list<{canonical_type(item)}>"
    if kind == "map" and len(parts) == 2:
        return f"map<{canonical_type(parts[0])},{canonical_type(parts[1])}>"
    fields = []
    for part in parts:
        field_name, _, field_type = part.partition(":")
        fields.append(f"{field_name.strip()}:{canonical_type(field_type)}")
    return f"struct<{','.join(fields)}>"


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not nested inside <>, () or []."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "<([":
            depth += 1
        elif char in ">)]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def types_match(declared: str, sampled: str) -> bool:
    """Say whether two type names mean the same type (a sampled null type matches anything)."""
    declared_canonical, sampled_canonical = canonical_type(declared), canonical_type(sampled)
    return sampled_canonical == "null" or declared_canonical == sampled_canonical


def schema_differences(
    declared: list[dict[str, Any]], sampled: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """List how a declared schema and the sampled data's schema differ, column by column."""
    sampled_by_name = {field["name"]: field for field in sampled}
    declared_names = {field["name"] for field in declared}
    differences = []
    for field in declared:
        name, found = field["name"], sampled_by_name.get(field["name"])
        if found is None:
            differences.append(_difference(name, "missing_in_data", field, None))
            continue
        if not types_match(field["type"], found["type"]):
            differences.append(_difference(name, "type_differs", field, found))
        elif field.get("nullable") is False and found.get("nullable"):
            differences.append(_difference(name, "nullability_differs", field, found))
    for field in sampled:
        if field["name"] not in declared_names:
            differences.append(_difference(field["name"], "missing_in_declared", None, field))
    return differences


_DIFFERENCE_MESSAGES: dict[str, str] = {
    "missing_in_data": "declared but not in the data",
    "missing_in_declared": "in the data but not declared",
    "type_differs": "declared as {declared} but the data has {sampled}",
    "nullability_differs": "declared not nullable but the data has nulls",
}


def _difference(
    name: str, kind: str, declared: dict[str, Any] | None, sampled: dict[str, Any] | None
) -> dict[str, Any]:
    """Describe one schema difference."""
    declared_type = declared["type"] if declared else None
    sampled_type = sampled["type"] if sampled else None
    detail = _DIFFERENCE_MESSAGES[kind].format(declared=declared_type, sampled=sampled_type)
    return {
        "column": name,
        "kind": kind,
        "declared": declared_type,
        "sampled": sampled_type,
        "message": f"Column {name!r}: {detail}",
    }
