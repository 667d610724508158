# Code written for metadata == {} at the root: metadata is None there, so .get fails.
# The engine adds a hint about `metadata or {}`.
# expect-action: list
# expect-error: AttributeError
# expect-message: metadata or {}


def list_objects(context, metadata):
    path = metadata.get("path", "/")
    yield {"name": path + "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
