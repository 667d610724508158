# A syntax error is reported before anything runs.
# expect-action: list
# expect-error: ContractError
# expect-message: Syntax error


def list_objects(context, metadata)
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    return None
