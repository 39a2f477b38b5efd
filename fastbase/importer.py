"""Turn "module:attr" into the application, with one-line errors."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import Any, Callable, Optional, Tuple

from .config import Config


class AppLoadError(Exception):
    """The application could not be loaded; the message is one line.
    ``original`` is the exception behind it, if any (its traceback is shown
    at --log-level debug)."""

    original: Optional[BaseException] = None


def _failed(message: str, original: BaseException) -> AppLoadError:
    error = AppLoadError(message)
    error.original = original
    return error


def _message(exc: BaseException) -> str:
    """The first line of what ``exc`` says, without the location a
    SyntaxError puts in its str() (_where adds it once)."""
    if isinstance(exc, SyntaxError) and exc.msg:
        text = str(exc.msg)
    else:
        text = str(exc)
    return text.splitlines()[0] if text else ""


def _module_suggestion(module_name: str) -> str:
    """For a file path given as the module ("app.py", "src/app.py"), the
    module name meant."""
    if not (module_name.endswith(".py") or "/" in module_name or os.sep in module_name):
        return ""
    dotted = module_name[: -len(".py")] if module_name.endswith(".py") else module_name
    dotted = dotted.replace(os.sep, "/").strip("/").replace("/", ".")
    return dotted


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
    suggestion = _module_suggestion(module_name)
    if not sep or not module_name or not attrs:
        hint = f' (did you mean "{suggestion or module_name}:app"?)' if module_name and not attrs else ""
        raise AppLoadError(f'the app must be given as "module:attribute", not {path!r}{hint}')
    if suggestion:
        # A file path where a module name belongs: say which module is meant.
        raise AppLoadError(f'{module_name!r} is a file path, not a module name: did you mean "{suggestion}:{attrs}"?')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and missing != module_name and not module_name.startswith(missing + "."):
            raise _failed(f"importing {module_name!r} failed: no module named {missing!r}{_where(exc)}", exc) from None
        raise _failed(f"could not import module {module_name!r} (is --app-dir right?)", exc) from None
    except BaseException as exc:  # noqa: BLE001 - the user's module failed
        raise _failed(f"importing {module_name!r} raised {type(exc).__name__}: {_message(exc)}{_where(exc)}", exc) from None
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
            raise _failed(f"the app factory raised {type(exc).__name__}: {_message(exc)}{_where(exc)}", exc) from None
    if not callable(app):
        raise AppLoadError(f"the app is not callable: {app!r}")
    interface = config.interface
    if interface == "auto":
        interface = detect_interface(app)
    return app, interface
