"""Read a JSON API into pandas, one partition per page of results."""

import json

import pandas as pd


def context(credentials):
    # Credentials are the string stored on the connection, often JSON.
    settings = json.loads(credentials) if credentials else {}
    return {"base_url": settings.get("base_url", "https://example.com/api"), "pages": 3}


def list_objects(context, metadata):
    # Called with metadata=None at the root; yield one dict per partition.
    for page in range(1, context["pages"] + 1):
        yield {"name": f"page-{page}", "fingerprint": f"v1-{page}", "is_prefix": False}


def read_pandas_dataframe(context, metadata):
    # Called once per partition with that partition's dict. Replace with a real request.
    page = int(metadata["name"].split("-")[1])
    return pd.DataFrame({"page": [page] * 3, "item": ["a", "b", "c"], "value": [1.5, 2.5, None]})
