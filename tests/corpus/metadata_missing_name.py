# An item without a name.
# expect-action: list
# expect-ok: true
# expect-problem: missing key 'name'


def list_objects(context, metadata):
    yield {"fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
