# list_objects forgets to return or yield anything.
# expect-action: list
# expect-error: ContractError
# expect-message: list_objects returned None


def list_objects(context, metadata):
    objects = [{"name": "a.csv", "fingerprint": "v1"}]
    objects.sort(key=lambda o: o["name"])


def read_pandas_dataframe(context, metadata):
    import pandas as pd

    return pd.DataFrame({"a": [1]})
