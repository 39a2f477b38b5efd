"""``manage.py`` for the one-module project in djangosite.py."""

import sys

import djangosite  # noqa: F401  (configures settings)
from django.core.management import execute_from_command_line

if __name__ == "__main__":
    execute_from_command_line(sys.argv)
