# A reader that forks until it cannot: the process limit stops it, not the machine.
# expect-action: read
# expect-error: BlockingIOError
# expect-message: Resource temporarily unavailable
import os
import time


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
