"""Turn "module:attr" into the application, with one-line errors."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import Any, Callable, Tuple

from .config import Config


class AppLoadError(Exception):
    """The application could not be loaded; the message is one line."""


def _where(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}, line {exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        return f" ({last.filename}, line {last.lineno})"
    return ""


def import_from_string(path: str) -> Any:
    module_name, sep, attrs = path.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(f'the app must be given as "module:attribute", not {path!r}')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and missing != module_name and not module_name.startswith(missing + "."):
            raise AppLoadError(f"importing {module_name!r} failed: no module named {missing!r}{_where(exc)}") from None
        raise AppLoadError(f"could not import module {module_name!r} (is --app-dir right?)") from None
    except BaseException as exc:  # noqa: BLE001 - the user's module failed
        message = str(exc).splitlines()[0] if str(exc) else ""
        raise AppLoadError(
            f"importing {module_name!r} raised {type(exc).__name__}: {message}{_where(exc)}"
        ) from None
    obj: Any = module
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(f"attribute {attrs!r} not found in module {module_name!r}") from None
    return obj


def detect_interface(app: Callable[..., Any]) -> str:
    """ASGI apps are coroutine functions (or objects whose __call__ is one)."""
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = getattr(app, "__call__", None)  # noqa: B004 - the method itself, to inspect
    if call is not None and inspect.iscoroutinefunction(call):
        return "asgi"
    return "wsgi"


def load_app(config: Config) -> Tuple[Callable[..., Any], str]:
    """The application and its interface ("wsgi" or "asgi")."""
    if config.app_dir is not None:
        app_dir = os.path.abspath(config.app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
    app = config.app
    if app is None:
        raise AppLoadError("no application given")
    if isinstance(app, str):
        app = import_from_string(app)
    if config.factory:
        if not callable(app):
            raise AppLoadError("--factory was given but the app is not callable")
        try:
            app = app()
        except BaseException as exc:  # noqa: BLE001
            raise AppLoadError(f"the app factory raised {type(exc).__name__}: {exc}{_where(exc)}") from None
    if not callable(app):
        raise AppLoadError(f"the app is not callable: {app!r}")
    interface = config.interface
    if interface == "auto":
        interface = detect_interface(app)
    return app, interface
