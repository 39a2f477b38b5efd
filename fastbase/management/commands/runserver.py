"""``manage.py runserver`` served by fastbase.

Django's own runserver command (or staticfiles', when installed) stays in
charge of options, checks, migrations notice, banner and autoreloader; this
subclass only supplies the server class, the ``--asgi``/``--wsgi`` switch
and one line naming fastbase.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.utils.module_loading import import_string

from fastbase import __version__
from fastbase.django.servers import DevServer

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import Command as BaseCommand
else:  # pragma: no cover - exercised by projects without staticfiles
    from django.core.management.commands.runserver import Command as BaseCommand


class Command(BaseCommand):
    help = BaseCommand.help + " Served by fastbase."
    server_cls = DevServer

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--asgi",
            action="store_const",
            const="asgi",
            dest="fastbase_interface",
            help="Serve the ASGI application (the default when ASGI_APPLICATION is set).",
        )
        group.add_argument(
            "--wsgi",
            action="store_const",
            const="wsgi",
            dest="fastbase_interface",
            help="Serve the WSGI application (the default otherwise).",
        )

    def handle(self, *args: Any, **options: Any) -> Any:
        interface = options.get("fastbase_interface")
        if interface is None:
            interface = "asgi" if getattr(settings, "ASGI_APPLICATION", None) else "wsgi"
        self.fastbase_interface = interface
        if interface == "asgi":
            from django.core.exceptions import ImproperlyConfigured

            from fastbase.django.handler import handler_setting

            try:
                self.fastbase_handler = handler_setting()
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
        command = self

        def announce(server: DevServer) -> None:
            command.announce(server)

        # A per-run subclass carries the announcement; run() builds it.
        self.server_cls = type("DevServer", (DevServer,), {"announce": staticmethod(announce)})  # type: ignore[assignment]
        return super().handle(*args, **options)

    def get_handler(self, *args: Any, **options: Any) -> Any:
        if self.fastbase_interface == "wsgi":
            return super().get_handler(*args, **options)
        # fastbase's ASGIHandler unless settings.FASTBASE_ASGI_HANDLER = "django"
        # (or Django is older than 5.0).
        from fastbase.django import handler

        path = getattr(settings, "ASGI_APPLICATION", None)
        if path:
            application = import_string(path)
            if self.fastbase_handler == "fastbase":
                application = handler.swap_in(application)
        elif self.fastbase_handler == "fastbase" and handler.SUPPORTED:
            application = handler.get_asgi_application()
        else:
            from django.core.asgi import get_asgi_application

            application = get_asgi_application()
        use_static = options.get("use_static_handler", False)
        insecure = options.get("insecure_serving", False)
        if apps.is_installed("django.contrib.staticfiles") and use_static and (settings.DEBUG or insecure):
            from fastbase.django.static import StreamingASGIStaticFilesHandler

            return StreamingASGIStaticFilesHandler(application)
        return application

    def announce(self, server: DevServer) -> None:
        host, port = server.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        self.stdout.write(
            f"fastbase {__version__} is serving {server.interface.upper()} at http://{shown}:{port}/"
        )
