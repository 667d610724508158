"""The `schema` action: infer_schema's declared schema against a sample read from one leaf.

infer_schema is optional and its parameters are bound by name (spark, context, metadata,
credentials; `spark` connects on first use). It may return a pyspark StructType or a DataFrame
(pandas, pyarrow or pyspark), whose schema is taken. The sample is read like a preview of at
least SCHEMA_SAMPLE_ROWS rows; when sampling fails, the error keeps the declared schema.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa

from connector_engine import schemas
from connector_engine.child.errors import memory_limit_mb, user_error
from connector_engine.child.loader import LoadedConnector
from connector_engine.child.reads import leaf_to_read, read_leaf
from connector_engine.child.results import ActionFailed, ActionOutcome
from connector_engine.child.spark_client import spark_error
from connector_engine.protocol import ErrorType
from connector_engine.user_code import ConnectorError
from connector_engine.values import describe

SCHEMA_SAMPLE_ROWS = 1000


def run_schema(connector: LoadedConnector) -> ActionOutcome:
    """Compare infer_schema's declared schema (if any) with a sample read from one leaf."""
    leaf = leaf_to_read(connector)
    infer = connector.function("infer_schema")
    declared = declared_schema(connector, infer, leaf) if infer is not None else None
    result: dict[str, Any] = {"declared": declared, "sampled": None, "differences": []}
    row_limit = max(connector.request.limits.row_limit, SCHEMA_SAMPLE_ROWS)
    try:
        table, _, _ = read_leaf(connector, leaf, row_limit)
    except BaseException as exc:  # keep the declared schema when sampling fails
        raise ActionFailed(user_error(exc, memory_limit_mb(connector.request)), result) from None
    result["sampled"] = schemas.sampled_schema_fields(table)
    if declared is not None:
        result["differences"] = schemas.schema_differences(declared, result["sampled"])
    return ActionOutcome(True, result)


def declared_schema(
    connector: LoadedConnector, infer: Callable[..., Any], leaf: dict[str, Any]
) -> list[dict[str, Any]]:
    """Call infer_schema with the arguments it names and convert what it returns."""
    try:
        returned = infer(**infer_schema_arguments(connector, infer, leaf))
    except BaseException as exc:
        raise spark_error(exc, infer) from None
    fields = schema_fields(returned)
    if fields is None:
        raise ConnectorError.about(
            ErrorType.CONTRACT_ERROR,
            f"infer_schema returned {describe(returned)}; it must return a pyspark StructType "
            "or a DataFrame (pandas, pyarrow or pyspark)",
            infer,
        )
    return fields


def infer_schema_arguments(
    connector: LoadedConnector, infer: Callable[..., Any], leaf: dict[str, Any]
) -> dict[str, Any]:
    """Bind infer_schema's parameters by name; `spark` connects on first use."""
    available = {
        "context": connector.context,
        "metadata": leaf,
        "credentials": connector.request.credentials,
    }
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(infer).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update({k: v for k, v in available.items() if k not in arguments})
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        elif name == "spark":
            try:
                arguments[name] = connector.spark()
            except ConnectorError as exc:
                raise exc.located_at(infer) from None
        elif name in available:
            arguments[name] = available[name]
    return arguments


def schema_fields(value: Any) -> list[dict[str, Any]] | None:
    """Return the fields of a StructType, DataFrame, Arrow table or schema; None otherwise."""
    if _is_struct_type(value):
        return schemas.spark_schema_fields(value)
    if isinstance(value, pd.DataFrame):
        return schemas.pandas_schema_fields(value)
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return schemas.arrow_schema_fields(value.schema)
    if isinstance(value, pa.Schema):
        return schemas.arrow_schema_fields(value)
    if type(value).__module__.startswith("pyspark") and hasattr(value, "schema"):
        schema = value.schema  # a pyspark DataFrame (classic or Connect)
        return schemas.spark_schema_fields(schema) if _is_struct_type(schema) else None
    return None


def _is_struct_type(value: Any) -> bool:
    """Recognise a pyspark StructType without importing pyspark."""
    kind = type(value)
    return kind.__name__ == "StructType" and kind.__module__.startswith("pyspark")
