"""Shared code for the example connection's connectors (importable as `library`)."""

import hashlib


def file_sha256(path, chunk_size=1024 * 1024):
    """Return the SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
