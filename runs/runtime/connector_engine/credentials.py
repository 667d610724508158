"""A connection's credentials as fields: which are secret, and every spelling of a secret to mask.

Credentials are one text, handed to `context(credentials)` exactly as stored. When that text is a
JSON object, each top-level key is a *field*, secret or not: `looks_secret` gives the default
from the field's name (password, secret, token, key, auth, credentials, ...) and the owner may
change it (an explicit list of secret field names). Any other text (a plain string, a JSON list
or number) is one secret as a whole.

What is masked (`secret_values`): every string leaf of a secret field's value at any depth (a
value that is itself JSON text, such as a service account's key file, adds its own leaves), or
the whole text and its string leaves when it is not an object. Only values of at least
MIN_SECRET_LENGTH characters count. Each secret is masked in every spelling it commonly takes in
output (`spellings`): as it is, JSON-escaped, URL-encoded and base64 (standard and URL-safe). Values
of fields that are not secret are never masked: they are configuration people need to see.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

MIN_SECRET_LENGTH = 4
# A field whose name has one of these words (or starts with one) is secret unless its owner says
# otherwise. Words, not substrings: "monkey" is not a key, "api_key" and "apiKey" are.
SECRET_WORDS = (
    "auth",
    "bearer",
    "cert",
    "cookie",
    "credential",
    "dsn",
    "key",
    "passphrase",
    "passwd",
    "password",
    "private",
    "pwd",
    "secret",
    "session",
    "signature",
    "token",
)
# Names made of several words that hold whole secrets (a service account's key file, a URL with
# its password).
SECRET_PHRASES = ("service_account", "connection_string", "conn_str", "database_url")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass(frozen=True)
class CredentialField:
    """One top-level field of JSON object credentials."""

    name: str
    value: Any  # its JSON value (usually a string)
    secret: bool

    @property
    def text(self) -> str:
        """The value as people edit it: a string as it is, anything else as JSON."""
        return self.value if isinstance(self.value, str) else json.dumps(self.value)


def looks_secret(name: str) -> bool:
    """Whether a field called `name` holds a secret by default."""
    words = [word.lower() for word in _WORD.findall(name)]
    joined = "_".join(words)
    return any(word.startswith(SECRET_WORDS) for word in words) or any(
        phrase in joined for phrase in SECRET_PHRASES
    )


def credentials_object(text: str) -> dict[str, Any] | None:
    """The credentials as a JSON object, or None when they are not one (one secret then)."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def credential_fields(
    text: str, secret_names: Iterable[str] | None = None
) -> list[CredentialField]:
    """The fields of JSON object credentials, in their order (none for any other text).

    `secret_names` None takes each field's default (`looks_secret`); a list names exactly the
    secret fields.
    """
    parsed = credentials_object(text)
    if parsed is None:
        return []
    chosen = None if secret_names is None else set(secret_names)
    return [
        CredentialField(name, value, looks_secret(name) if chosen is None else name in chosen)
        for name, value in parsed.items()
    ]


def secret_values(text: str, secret_names: Iterable[str] | None = None) -> list[str]:
    """Every string to mask for these credentials, in every spelling, longest first."""
    if not text:
        return []
    if credentials_object(text) is None:
        candidates = [text, text.strip(), *_leaves(text)]
    else:
        candidates = [
            leaf
            for field in credential_fields(text, secret_names)
            if field.secret
            for leaf in _leaves(field.value)
        ]
    found = set()
    for candidate in candidates:
        if len(candidate.strip()) >= MIN_SECRET_LENGTH:
            found |= spellings(candidate)
    return sorted(found, key=lambda secret: (-len(secret), secret))


def spellings(secret: str) -> set[str]:
    """A secret as it is and as output commonly spells it: JSON-escaped, URL-encoded, base64."""
    data = secret.encode()
    found = {
        secret,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
        text = encoded.decode()
        found |= {text, text.rstrip("=")}
    return {spelling for spelling in found if len(spelling) >= MIN_SECRET_LENGTH}


def _leaves(value: Any) -> Iterator[str]:
    """Every string leaf of a JSON value; a string that is itself JSON adds its leaves."""
    if isinstance(value, str):
        yield value
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):
                parsed = None
            yield from _leaves(parsed)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
