# A reader that hunts for the server's secrets in environment variables, its own and other
# processes' (/proc/*/environ); the test process sets CORPUS_SECRET_ENV before the sandbox starts.
# expect-action: read
# expect-ok: true
# expect-not-in-output: env-s3cret-7f3a9
import glob
import os

import pandas as pd


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    found = [f"{key}={value}" for key, value in os.environ.items()]
    for path in glob.glob("/proc/*/environ"):
        try:
            with open(path, "rb") as handle:
                found.append(handle.read().decode(errors="replace"))
        except OSError as exc:
            found.append(f"{path}: {exc}")
    print("\n".join(found))
    return pd.DataFrame({"found": found})
