# A name that is a number.
# expect-action: list
# expect-ok: true
# expect-problem: 'name' must be a string


def list_objects(context, metadata):
    yield {"name": 42, "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
