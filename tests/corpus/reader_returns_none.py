# A reader that builds a DataFrame but forgets to return it.
# expect-action: read
# expect-error: ContractError
# expect-message: read_pandas_dataframe returned None; it must return a pandas DataFrame
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    frame = pd.DataFrame({"a": [1, 2]})
    frame["b"] = frame["a"] * 2
