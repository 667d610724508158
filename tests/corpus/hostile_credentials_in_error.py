# A reader that raises with the credentials in the message: message and traceback masked.
# expect-action: read
# expect-credentials: {"token": "s3cr3t-value"}
# expect-error: ValueError
# expect-message: rejected ****
# expect-not-in-output: s3cr3t-value
import json


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    token = json.loads(context["credentials"])["token"]
    raise ValueError(f"server rejected {token}")


def context(credentials):
    return {"credentials": credentials}
