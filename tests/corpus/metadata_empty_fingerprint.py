# An empty fingerprint.
# expect-action: list
# expect-ok: true
# expect-problem: 'fingerprint' must not be empty


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": ""}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
