#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connectors_site.settings")
    from django.core.management import execute_from_command_line

    from connectors_site.data_dir import prepare_data_dir

    prepare_data_dir()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
