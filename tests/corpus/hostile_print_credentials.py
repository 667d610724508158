# A connector that prints its credentials and returns them as data: all masked.
# expect-action: read
# expect-credentials: {"token": "s3cr3t-value", "user": "ada"}
# expect-ok: true
# expect-not-in-output: s3cr3t-value
# expect-in-logs: ****
import json

import pandas as pd


def context(credentials):
    print("credentials are", credentials)
    return json.loads(credentials)


def list_objects(context, metadata):
    yield {"name": context["token"], "fingerprint": context["token"]}


def read_pandas_dataframe(context, metadata):
    print("token:", context["token"], repr(context))
    return pd.DataFrame({"token": [context["token"]], context["token"]: [1]})
