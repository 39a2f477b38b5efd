"""System checks for the Django integration."""

from __future__ import annotations

from typing import Any, List

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def check_app_order(app_configs: Any = None, **kwargs: Any) -> List[checks.CheckMessage]:
    apps = list(settings.INSTALLED_APPS)
    names = [name.split(".apps.")[0] for name in apps]
    if "fastbase" in names and "django.contrib.staticfiles" in names:
        if names.index("fastbase") > names.index("django.contrib.staticfiles"):
            return [
                checks.Error(
                    "'fastbase' comes after 'django.contrib.staticfiles' in INSTALLED_APPS, "
                    "so `manage.py runserver` is staticfiles' and not fastbase's.",
                    hint="Move 'fastbase' before 'django.contrib.staticfiles' (first is simplest).",
                    id="fastbase.E001",
                )
            ]
    return []
