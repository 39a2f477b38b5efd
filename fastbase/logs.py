"""Loggers, the access-log line, and the default logging set-up.

``fastbase.error`` carries server events and application tracebacks;
``fastbase.access`` one line per response when the access log is on.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Optional

error_log = logging.getLogger("fastbase.error")
access_log = logging.getLogger("fastbase.access")

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]}


def escape(text: str) -> str:
    """Control characters escaped, so a request line cannot forge log lines."""
    # Control characters are never printable, and a request line the parser
    # accepted has none: skip translate's dict lookup and KeyError per
    # character (~1 µs for a short line).
    if text.isprintable():
        return text
    return text.translate(_ESCAPES)


def format_client(client: Optional[tuple]) -> str:
    if not client:
        return "-"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def access_line(client: Optional[tuple], request_line: str, status: int, size: int, seconds: float) -> str:
    return f'{format_client(client)} - "{escape(request_line)}" {status} {size} {seconds * 1000:.1f}ms'


def configure(level: str = "info", log_config: Optional[str] = None) -> None:
    """Give the fastbase loggers a stderr handler unless the host app already
    configured one; set the level. A --log-config file replaces all of it."""
    if log_config is not None:
        from .logconfig import apply_file

        apply_file(log_config)
        return
    numeric = TRACE if level == "trace" else getattr(logging, level.upper())
    root = logging.getLogger("fastbase")
    root.setLevel(numeric)
    if not root.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s", "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
        root.propagate = False


def describe_exit(code: int) -> str:
    """A child process's return code in words: "exit status 3", "signal SIGKILL"."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
