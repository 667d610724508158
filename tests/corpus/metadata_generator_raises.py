# A generator failing midway: the objects before the failure are still listed.
# expect-action: list
# expect-error: ConnectionError
# expect-message: listing page 2 failed


def list_objects(context, metadata):
    yield {"name": "page1.csv", "fingerprint": "v1"}
    raise ConnectionError("listing page 2 failed")


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
