# A leaf without a fingerprint (change detection needs one).
# expect-action: list
# expect-ok: true
# expect-problem: missing key 'fingerprint'


def list_objects(context, metadata):
    yield {"name": "a.csv"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
