"""A folder hierarchy: prefixes (is_prefix=True) expand into their own listings."""

import hashlib

import pandas as pd

TREE = {
    "": ["2024/", "2025/"],
    "2024/": ["2024/q4.csv"],
    "2025/": ["2025/q1.csv", "2025/q2.csv"],
}


def list_objects(context, metadata):
    # metadata is None at the root, then the prefix's own dict for each folder.
    folder = metadata["name"] if metadata else ""
    for name in TREE[folder]:
        if name.endswith("/"):
            yield {"name": name, "fingerprint": name, "is_prefix": True}
        else:
            # A content hash makes ingests re-read only files that changed.
            yield {"name": name, "fingerprint": hashlib.sha256(name.encode()).hexdigest()}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"file": [metadata["name"]], "rows_in_file": [42]})
