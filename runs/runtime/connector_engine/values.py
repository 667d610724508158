"""Turn arbitrary Python values from user code into short reprs and JSON-safe copies.

Both helpers never raise: user objects can have a `__repr__` that raises, cycles, or huge sizes.
"""

from __future__ import annotations

import base64
import builtins
import datetime as dt
import decimal
import math
import reprlib
import uuid
from collections.abc import Mapping
from typing import Any

REPR_LIMIT = 200

_PRIMITIVES = (str, int, bool, type(None))


class _StrictRepr(reprlib.Repr):
    """A reprlib.Repr that lets a failing __repr__ raise instead of hiding it."""

    def repr_instance(self, obj: Any, level: int) -> str:
        text = builtins.repr(obj)
        if len(text) > self.maxother:
            half = (self.maxother - 3) // 2
            text = text[:half] + "..." + text[len(text) - half :]
        return text


_repr = _StrictRepr()
_repr.maxstring = REPR_LIMIT
_repr.maxother = REPR_LIMIT
_repr.maxlist = 20
_repr.maxtuple = 20
_repr.maxdict = 20
_repr.maxset = 20
_repr.maxlevel = 4


def safe_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """Return a short repr of a value, or a placeholder when its repr raises."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a user __repr__ may raise anything
        return f"<repr failed: {type(exc).__name__}: {_plain_str(exc)}>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def type_name(value: Any) -> str:
    """Return a readable name of a value's type, qualified unless it is a builtin."""
    kind = type(value)
    module = getattr(kind, "__module__", "")
    if module in ("builtins", "connector", "library", "", None):  # user classes: bare names
        return kind.__qualname__
    return f"{module.split('.')[0]}.{kind.__qualname__}"


def describe(value: Any) -> str:
    """Return 'None' or 'a/an <type>' for messages like 'returned a list'."""
    if value is None:
        return "None"
    name = type_name(value)
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"


def json_float(value: float) -> float | str | None:
    """Map NaN to None and infinities to strings; JSON has neither."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def json_safe(value: Any, depth: int = 0) -> Any:
    """Return a JSON-serialisable copy of a value; unknown objects become their repr."""
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, float):
        return json_float(value)
    if depth > 20:
        return safe_repr(value)
    try:
        return _json_safe_container(value, depth)
    except Exception:  # containers from user code may fail while iterated
        return safe_repr(value)


def _json_safe_container(value: Any, depth: int) -> Any:
    """Convert containers and well-known scalar types; fall back to a repr."""
    if isinstance(value, Mapping):
        return {_json_key(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return json_safe(item(), depth + 1)
    isoformat = getattr(value, "isoformat", None)  # pandas Timestamp and friends
    if callable(isoformat):
        return _isoformat_or_none(value, isoformat)
    return safe_repr(value)


def _isoformat_or_none(value: Any, isoformat: Any) -> str | None:
    """Return value.isoformat(), or None for NaT-like values."""
    text = isoformat()
    return None if text == "NaT" else text


def _json_key(key: Any) -> str:
    """Return a JSON object key for any dict key."""
    return key if isinstance(key, str) else safe_repr(key)


def flat_json_copy(item: dict[str, Any]) -> dict[str, Any]:
    """Copy a metadata dict JSON-safely; fast when every value is a plain scalar."""
    for key, value in item.items():
        if not isinstance(key, str) or not isinstance(value, _PRIMITIVES):
            return json_safe(item)
    return dict(item)


def _plain_str(exc: BaseException) -> str:
    """Return str(exc) without letting a broken __str__ escape."""
    try:
        return str(exc)
    except Exception:
        return type(exc).__name__
