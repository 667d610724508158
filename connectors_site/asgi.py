"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connectors_site.settings")
application = get_asgi_application()

from connectors_site.data_dir import prepare_data_dir  # noqa: E402 (settings are set up now)

prepare_data_dir()
