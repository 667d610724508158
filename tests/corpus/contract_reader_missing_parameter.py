# A reader without the metadata parameter the engine passes.
# expect-action: read
# expect-error: ContractError
# expect-message: missing the parameter `metadata`


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
