"""The Django app entry: ``"fastbase"`` in INSTALLED_APPS."""

from django.apps import AppConfig


class FastbaseConfig(AppConfig):
    name = "fastbase"
    verbose_name = "fastbase"

    def ready(self) -> None:
        from .django import checks  # noqa: F401  (registers the checks)
