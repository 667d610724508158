"""Sales CSV files in a folder hierarchy: region/year/month.csv, read as bytes and parsed as CSV.

Folders are yielded as prefixes (is_prefix=True) and expanded by the engine; each file is a
partition whose fingerprint is the SHA-256 of its content, so only changed files are re-read.
"""

import json
from pathlib import Path

from library import file_sha256


def context(credentials):
    # The example connection's credentials are JSON: {"root": "/path/to/the/csv/files"}.
    return {"root": json.loads(credentials)["root"]}


def list_objects(context, metadata):
    root = Path(context["root"])
    folder = root / metadata["name"] if metadata else root
    for path in sorted(folder.iterdir()):
        name = str(path.relative_to(root))
        if path.is_dir():
            yield {"name": name, "fingerprint": name, "is_prefix": True}
        elif path.suffix == ".csv":
            yield {"name": name, "fingerprint": file_sha256(path), "is_prefix": False}


def read_bytes(context, metadata):
    with open(Path(context["root"]) / metadata["name"], "rb") as handle:
        while chunk := handle.read(64 * 1024):
            yield chunk
