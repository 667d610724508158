# A listing that yields a string instead of a dict: reported as a problem, the rest is listed.
# expect-action: list
# expect-ok: true
# expect-problem: not a dict


def list_objects(context, metadata):
    yield {"name": "good.csv", "fingerprint": "v1"}
    yield "bad.csv"


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
