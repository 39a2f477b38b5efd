"""Request logs in runserver's format, through the "django.server" logger."""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

from ..logs import escape

logger = logging.getLogger("django.server")

_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# (second, its server_time): formatting the string costs more than the rest of
# the log line outside logging, and it only changes once a second. One tuple,
# so worker threads never see a second paired with another second's string.
_last_server_time: tuple = (None, "")


def server_time() -> str:
    """BaseHTTPRequestHandler.log_date_time_string(): 26/Nov/2026 21:07:59."""
    global _last_server_time
    now = int(time.time())
    second, text = _last_server_time
    if second != now:
        year, month, day, hh, mm, ss, *_ = time.localtime(now)
        text = f"{day:02d}/{_MONTHS[month]}/{year:04d} {hh:02d}:{mm:02d}:{ss:02d}"
        _last_server_time = (now, text)
    return text


def _extra(protocol: Any, status: int) -> dict:
    return {
        "request": protocol.transport.get_extra_info("socket") if protocol.transport is not None else None,
        "server_time": server_time(),
        "status_code": status,
    }


def access_log(protocol: Any, request: Optional[Any], status: int, size: int, seconds: float) -> None:
    if request is None and protocol.tls_probe:
        extra = _extra(protocol, 500)
        logger.error("You're accessing the development server over HTTPS, but it only supports HTTP.", extra=extra)
        return
    if status >= 500:
        level = logging.ERROR
    elif status >= 400:
        level = logging.WARNING
    else:
        level = logging.INFO
    # A LOGGING config that silences these lines (a common one) stops the work here.
    if not logger.isEnabledFor(level):
        return
    if request is None:
        line = "-"
    else:
        line = escape(
            f"{request.method.decode('latin-1')} {request.target.decode('latin-1')} HTTP/{request.http_version}"
        )
    # What logger.info() and co. do, without findCaller's stack walk (the
    # caller is always this function): same record factory, filters and
    # handlers, so LOGGING configs see the same records.
    record = logger.makeRecord(
        logger.name, level, _PATHNAME, _LINENO, '"%s" %s %s', (line, str(status), str(size)),
        None, "access_log", _extra(protocol, status),
    )
    logger.handle(record)


# Where access_log's records say they come from: this file, as findCaller
# would name it, and the function's first line.
_PATHNAME = access_log.__code__.co_filename
_LINENO = access_log.__code__.co_firstlineno


def log_disconnect(protocol: Any) -> None:
    logger.info("- Broken pipe from %s", protocol.client)
