"""Each sandbox request gets its own /tmp (and HOME): one user's files never reach another's
request, and the space is bounded."""

from __future__ import annotations

import pytest

from connector_engine.protocol import Limits, SandboxRequest
from connector_engine.sandbox import Sandbox, run_action

WRITER = """
import os
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "w", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    with open("/tmp/planted.py", "w") as handle:
        handle.write("STOLEN = 'credentials of the next user'")
    with open(os.path.join(os.environ["HOME"], ".netrc"), "w") as handle:
        handle.write("machine example.com password hunter2")
    return pd.DataFrame({"home": [os.environ["HOME"]]})
"""

READER = """
import os
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "r", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    seen = sorted(os.listdir("/tmp")) + sorted(os.listdir(os.environ["HOME"]))
    return pd.DataFrame({"seen": [repr(seen)]})
"""

FILLER = """
import errno
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "f", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    written = 0
    try:
        with open("/tmp/fill", "wb") as handle:
            for _ in range(64):
                handle.write(b"x" * (1 << 20))
                handle.flush()
                written += 1
    except OSError as exc:
        return pd.DataFrame({"written_mb": [written], "error": [errno.errorcode[exc.errno]]})
    return pd.DataFrame({"written_mb": [written], "error": [""]})
"""


@pytest.fixture(scope="module")
def sandbox():
    sandbox = Sandbox()
    yield sandbox
    sandbox.stop()


def test_a_file_one_request_leaves_in_tmp_is_gone_for_the_next(sandbox):
    wrote = run_action(SandboxRequest(action="read", code=WRITER), sandbox=sandbox)
    assert wrote.ok, wrote.error
    assert wrote.result["rows"] == [["/tmp"]]  # HOME lies in the request's own /tmp

    read = run_action(SandboxRequest(action="read", code=READER), sandbox=sandbox)

    assert read.ok, read.error
    assert read.result["rows"] == [["[]"]]  # neither /tmp/planted.py nor the .netrc


def test_the_private_tmp_is_bounded(sandbox):
    limits = Limits(tmp_mb=8)
    filled = run_action(SandboxRequest(action="read", code=FILLER, limits=limits), sandbox=sandbox)

    assert filled.ok, filled.error
    ((written_mb, error),) = filled.result["rows"]
    assert error == "ENOSPC" and written_mb <= 8
