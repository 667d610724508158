# A reader that prints megabytes of output, then returns normally: the logs are cut.
# expect-action: read
# expect-ok: true
# expect-in-logs: [output cut:
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    for i in range(50_000):
        print(f"line {i:08d} " + "x" * 80)
    return pd.DataFrame({"a": [1]})
