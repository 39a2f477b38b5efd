"""``--log-config PATH``: the logging set-up from a file, as uvicorn and
gunicorn take it.

- ``.json``: a ``logging.config.dictConfig`` dictionary;
- ``.yaml`` / ``.yml``: the same in YAML (needs PyYAML);
- anything else (``.ini``, ``.conf``, ...): ``logging.config.fileConfig``.

Loggers that exist already (``fastbase.error``, ``fastbase.access``, the
app's) stay enabled unless the file says ``disable_existing_loggers: true``
(for INI files they always stay enabled): the standard library's default of
disabling them silently drops the server's own messages. A file that cannot
be read or applied is a one-line ConfigError.
"""

from __future__ import annotations

import json
import logging.config
import os
from typing import Any

from .config import ConfigError

__all__ = ["apply_file"]


def _load_yaml(path: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigError(f"--log-config {path}: YAML files need PyYAML (pip install pyyaml)") from None
    with open(path, encoding="utf-8") as file:
        try:
            return yaml.safe_load(file)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"--log-config {path}: not valid YAML{where}") from None


def apply_file(path: str) -> None:
    extension = os.path.splitext(path)[1].lower()
    try:
        if extension in (".json", ".yaml", ".yml"):
            if extension == ".json":
                with open(path, encoding="utf-8") as file:
                    try:
                        config = json.load(file)
                    except json.JSONDecodeError as exc:
                        raise ConfigError(f"--log-config {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
            else:
                config = _load_yaml(path)
            if not isinstance(config, dict):
                raise ConfigError(f"--log-config {path}: expected a dictConfig mapping, got {type(config).__name__}")
            config.setdefault("version", 1)
            config.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(config)
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the logging module raises, one line
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        message = message.replace(f"{path} is invalid: ", "")
        raise ConfigError(f"--log-config {path}: {message}") from None
