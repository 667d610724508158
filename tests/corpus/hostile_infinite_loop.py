# A reader that never returns.
# expect-action: read
# expect-error: Timeout
# expect-message: longer than


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    print("starting to spin")
    while True:
        pass
