"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connectors_site.settings")
application = get_wsgi_application()

from connectors_site.data_dir import prepare_data_dir  # noqa: E402 (settings are set up now)

prepare_data_dir()
