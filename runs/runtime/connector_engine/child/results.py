"""What an action handler returns, and how it stops early while keeping a partial result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa


@dataclass
class ActionOutcome:
    """What an action produced: a JSON-safe result and/or error, and the rows read as Arrow.

    A batch read leaves `table` None and puts one table per leaf (None when it failed) in
    `tables`, in the order of result["batch"].
    """

    ok: bool
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    table: pa.Table | None = None
    tables: list[pa.Table | None] | None = None


class ActionFailed(Exception):
    """Stop an action with an error while keeping a partial result."""

    def __init__(self, error: dict[str, Any], result: dict[str, Any] | None = None) -> None:
        super().__init__(error.get("message"))
        self.error = error
        self.result = result
