# A reader that opens the server's database file; it lives in a path the sandbox hides.
# The test replaces {hidden_dir} with a hidden directory holding db.sqlite3.
# expect-action: read
# expect-credentials: {"db": "{hidden_dir}/db.sqlite3"}
# expect-error: FileNotFoundError
# expect-not-in-output: fake-db-content
import json


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def context(credentials):
    return json.loads(credentials)


def read_pandas_dataframe(context, metadata):
    with open(context["db"], "rb") as handle:
        print(handle.read())
