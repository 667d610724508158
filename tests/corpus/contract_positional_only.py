# Positional-only parameters cannot receive the engine's keyword arguments.
# expect-action: list
# expect-error: ContractError
# expect-message: positional-only


def list_objects(context, metadata, /):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
