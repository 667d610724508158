# is_prefix given as a string.
# expect-action: list
# expect-ok: true
# expect-problem: 'is_prefix' must be True or False


def list_objects(context, metadata):
    yield {"name": "folder", "fingerprint": "v1", "is_prefix": "yes"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
