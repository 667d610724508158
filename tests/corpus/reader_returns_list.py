# A reader returning rows as a list instead of a DataFrame.
# expect-action: read
# expect-error: ContractError
# expect-message: read_pandas_dataframe returned a list


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    return [{"a": 1}, {"a": 2}]
