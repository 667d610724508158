"""What decides an ingest's output, hashed input by input, and the code fingerprint of them all.

The caller names each input and gives its text (runs.ingest.planning.ingest_inputs: the connector's
code, interface, parser, parser options and packages, the connection's packages, library code and
uploaded package files). `input_hashes` hashes each one; an empty input is left out, so adding an
input that is empty for existing connectors changes no fingerprint. `code_fingerprint` combines the
hashes: it is stored with every partition an ingest writes, and a partition written with another one
is stale. A name, underscores read as spaces, is what a plan says changed ("library code changed"):
adding an input is one more name in the caller's mapping.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping


def input_hashes(inputs: Mapping[str, str]) -> dict[str, str]:
    """Return {name: SHA-256 of its text} for each non-empty input, in the given order."""
    return {
        name: hashlib.sha256(text.encode()).hexdigest() for name, text in inputs.items() if text
    }


def code_fingerprint(hashes: Mapping[str, str]) -> str:
    """Return one hash of every input's name and hash, whatever their order."""
    return hashlib.sha256(json.dumps(sorted(hashes.items())).encode()).hexdigest()


def changed_inputs(before: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """Name the inputs whose hash differs (set, changed or emptied), as a plan says them."""
    names = [*now, *(name for name in before if name not in now)]
    return [name.replace("_", " ") for name in names if before.get(name) != now.get(name)]
