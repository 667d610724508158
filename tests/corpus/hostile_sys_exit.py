# A reader that calls sys.exit.
# expect-action: read
# expect-error: SystemExit
# expect-message: sys.exit(3)
import sys


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    print("about to exit")
    sys.exit(3)
