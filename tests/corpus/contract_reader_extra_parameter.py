# A reader with a required parameter the engine never passes.
# expect-action: read
# expect-error: ContractError
# expect-message: required parameter `path`


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata, path):
    import pandas as pd

    return pd.read_csv(path)
