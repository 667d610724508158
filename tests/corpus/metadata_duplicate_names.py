# Two leaves with the same name, one at the root and one under a prefix.
# expect-action: list
# expect-ok: true
# expect-problem: duplicate leaf name 'a.csv'


def list_objects(context, metadata):
    if not metadata:
        yield {"name": "a.csv", "fingerprint": "v1"}
        yield {"name": "folder", "is_prefix": True}
    else:
        yield {"name": "a.csv", "fingerprint": "v2"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
