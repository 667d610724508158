# A fingerprint that is a float (a modification time not converted to str).
# expect-action: list
# expect-ok: true
# expect-problem: 'fingerprint' must be a string


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": 1700000000.5}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
