"""Encryption of connection credentials at rest: the one place that holds the Fernet keys.

Keys come from settings.CREDENTIALS_KEYS, newest first. Encryption uses the newest key;
decryption tries every key, so a key can be rotated without losing data.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialsUnreadable(Exception):
    """The stored credentials cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("CREDENTIALS_KEYS is empty: at least one Fernet key is needed")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes; make one with Fernet.generate_key())"
        ) from None


def _fernet(keys: Sequence[str] | None = None) -> MultiFernet:
    return _multi_fernet(tuple(keys if keys is not None else settings.CREDENTIALS_KEYS))


def encrypt(plaintext: str) -> str:
    """Encrypt `plaintext` under the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a stored token with whichever configured key made it."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable(
            "Stored credentials cannot be decrypted with the configured CREDENTIALS_KEYS "
            "(was a key removed before `manage.py rotate_credentials` ran?)"
        ) from None


def reencrypt(token: str, keys: Sequence[str] | None = None) -> str:
    """Re-encrypt a token under the newest of `keys` (default: the configured keys)."""
    try:
        return _fernet(keys).rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable("A stored token matches none of the keys") from None


def validate_keys(keys: Sequence[str]) -> None:
    """Raise ImproperlyConfigured unless every key is a usable Fernet key."""
    _fernet(keys)
