# A reader that ends its process with os._exit before returning.
# expect-action: read
# expect-error: ProcessExit
# expect-message: exit code 3
# expect-in-logs: bye
import os


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    print("bye", flush=True)
    os._exit(3)
