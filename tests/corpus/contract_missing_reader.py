# The pandas interface without read_pandas_dataframe.
# expect-action: read
# expect-error: ContractError
# expect-message: read_pandas_dataframe


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}
