# A reader that allocates memory until it hits the limit.
# expect-action: read
# expect-error: MemoryLimit
# expect-message: memory limit


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    blocks = []
    while True:
        blocks.append(bytearray(32 * 1024 * 1024))
