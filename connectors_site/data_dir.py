"""Create the data directory: done by each entry point (manage.py, wsgi, asgi), not settings."""

from __future__ import annotations

from django.conf import settings


def prepare_data_dir() -> None:
    """Create DATA_DIR (mode 0700), the keys it holds when none are configured, and the static
    folder WhiteNoise reads."""
    settings.DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.STATIC_ROOT.mkdir(exist_ok=True)
    # Reading them generates the secret key and the credentials key file on a fresh DATA_DIR.
    str(settings.SECRET_KEY)
    list(settings.CREDENTIALS_KEYS)
