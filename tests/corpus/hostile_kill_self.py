# A reader that aborts its own process (os.abort raises SIGABRT).
# expect-action: read
# expect-error: KilledBySignal
# expect-message: SIGABRT
import os


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    os.abort()
