# A reader that closes every file descriptor, so it cannot report a result.
# expect-action: read
# expect-error: ProcessExit
# expect-message: before returning a result
import os

import pandas as pd


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    os.closerange(0, 4096)
    return pd.DataFrame({"a": [1]})
