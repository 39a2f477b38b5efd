"""``manage.py runserver`` served by fastbase.

Django's own runserver command (or staticfiles', when installed) stays in
charge of options, checks, migrations notice, banner and autoreloader; this
subclass only supplies the server class, the ``--asgi``/``--wsgi`` switch,
one line naming fastbase and its event loop, and, in ASGI mode, "ASGI" for
the "WSGI" in Django 6's banner.
"""

from __future__ import annotations

import re
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
    stdout: Any  # BaseCommand's OutputWrapper

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

    def on_bind(self, server_port: int) -> None:
        # Django's own banner, with one word changed when it would be false:
        # Django 6 says "Starting WSGI development server at", and in ASGI
        # mode that is not what serves.
        if self.fastbase_interface != "asgi":
            return super().on_bind(server_port)
        stdout: Any = self.stdout
        self.stdout = _Retitled(stdout)
        try:
            super().on_bind(server_port)
        finally:
            self.stdout = stdout

    def announce(self, server: DevServer) -> None:
        host, port = server.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        self.stdout.write(f"fastbase {__version__} is serving {server.interface.upper()} at http://{shown}:{port}/ ({server.loop_name})")


class _Retitled:
    """An output stream that says ASGI where Django's banner says WSGI."""

    _WSGI_SERVER = re.compile(r"\bWSGI(?= development server\b)")

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, msg: str = "", *args: Any, **kwargs: Any) -> None:
        self._stream.write(self._WSGI_SERVER.sub("ASGI", msg), *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
