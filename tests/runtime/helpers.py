"""Run connector code strings through the in-process engine."""

from __future__ import annotations

import textwrap
from typing import Any

from connector_engine.child.actions import ActionOutcome, execute
from connector_engine.protocol import Limits, SandboxRequest


def run(action: str, code: str, **fields: Any) -> ActionOutcome:
    """Execute one action on dedented connector code."""
    limits = fields.pop("limits", None) or Limits()
    library = textwrap.dedent(fields.pop("library_code", ""))
    request = SandboxRequest(
        action=action,
        code=textwrap.dedent(code),
        library_code=library,
        limits=limits,
        **fields,
    )
    return execute(request)


def with_reader(code: str) -> str:
    """Return dedented connector code followed by a trivial pandas reader."""
    return textwrap.dedent(code) + PANDAS_READER


PANDAS_READER = """
def read_pandas_dataframe(context, metadata):
    import pandas as pd
    return pd.DataFrame({"name": [metadata["name"]]})
"""
