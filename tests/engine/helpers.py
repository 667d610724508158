"""Run connector code strings through the in-process engine."""

from __future__ import annotations

import textwrap
from typing import Any

from connector_engine.child.actions import execute
from connector_engine.child.results import ActionOutcome
from connector_engine.protocol import Limits, SandboxRequest

LIBRARY = """
import json

GREETING = "hello"

def parse_credentials(credentials):
    return json.loads(credentials or "{}")

def make_frame(name):
    import pandas as pd
    return pd.DataFrame({"name": [name], "greeting": [GREETING]})

def _private():
    return "hidden"
"""

# A connector using LIBRARY: a prefix "dir" with one leaf, and a leaf at the root.
CONNECTOR = """
import library

def context(credentials):
    return parse_credentials(credentials)

def list_objects(context, metadata):
    if not metadata:
        yield {"name": "dir", "is_prefix": True}
        yield {"name": "top.csv", "fingerprint": "v1", "rows": 3}
    else:
        yield {"name": "dir/inner.csv", "fingerprint": "v2", "rows": 250}

def read_pandas_dataframe(context, metadata):
    frame = library.make_frame(metadata["name"])
    return pd.concat([frame] * metadata["rows"], ignore_index=True)

import pandas as pd
"""


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
