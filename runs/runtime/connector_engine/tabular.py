"""Turn reader output into Arrow tables and Arrow tables into JSON rows and column lists.

Decisions:
- DataFrames convert with preserve_index=False (call reset_index() to keep an index). An object
  column Arrow cannot type (e.g. ints mixed with strings) becomes a string column: each value is
  str()-ed, None/NaN stay null. Non-string column names become str(); duplicate names are an error.
- Readable type names: int64, float64, string, bool, binary, date, timestamp[us],
  timestamp[us, tz=UTC], decimal(10,2), list<int64>, struct<a: int64>, map<string, int64>.
- `json_rows`: NaN/NaT/None -> null, +-inf -> "Infinity"/"-Infinity", dates and timestamps ->
  ISO 8601 strings, time -> ISO, durations -> str(timedelta), Decimal -> str, bytes -> base64
  text, lists/structs -> lists/dicts, maps -> lists of [key, value].
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pyarrow as pa

from connector_engine.protocol import ErrorType
from connector_engine.user_code import ConnectorError
from connector_engine.values import json_float, json_safe

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
            ErrorType.DATA_ERROR,
            f"The DataFrame has duplicate column names: {', '.join(duplicates)}",
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


# Schema metadata a spark read leaves on its table: {column name: Spark's type name}.
SPARK_TYPES = b"connector_engine.spark_types"


def table_columns(table: pa.Table | pa.Schema) -> list[dict[str, str]]:
    """Return [{"name", "type"}] for a table or schema; Spark's type names when a spark read
    left them (SPARK_TYPES)."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    spark_types = json.loads((schema.metadata or {}).get(SPARK_TYPES, b"{}"))
    return [
        {"name": f.name, "type": spark_types.get(f.name) or readable_type(f.type)} for f in schema
    ]


# ---------------------------------------------------------------- JSON rows


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
