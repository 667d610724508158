"""Describe and compare table schemas (a preview's column profile: connector_engine.profile).

Schemas are lists of {"name", "type", "nullable"}. A declared schema's nullable is what it
declares; a sampled schema's nullable is "nulls were seen in the sample", so only a declared
non-nullable column with sampled nulls is a nullability difference. Spark and Arrow type names
are compared through one canonical spelling (`canonical_type`).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pyarrow as pa

from connector_engine.tabular import dataframe_to_table, readable_type

# ---------------------------------------------------------------- schema fields


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
