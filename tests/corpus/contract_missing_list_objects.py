# No list_objects at all.
# expect-action: list
# expect-error: ContractError
# expect-message: list_objects


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
