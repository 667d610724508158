# infer_schema asking for something the engine cannot bind.
# expect-action: schema
# expect-error: ContractError
# expect-message: infer_schema has a parameter `table`


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})


def infer_schema(context, table):
    return None
