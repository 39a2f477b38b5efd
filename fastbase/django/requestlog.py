"""Request logs in runserver's format, through the "django.server" logger."""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

from ..logs import escape

logger = logging.getLogger("django.server")

_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def server_time() -> str:
    """BaseHTTPRequestHandler.log_date_time_string(): 26/Nov/2026 21:07:59."""
    year, month, day, hh, mm, ss, *_ = time.localtime()
    return f"{day:02d}/{_MONTHS[month]}/{year:04d} {hh:02d}:{mm:02d}:{ss:02d}"


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
    if request is None:
        line = "-"
    else:
        line = escape(
            f"{request.method.decode('latin-1')} {request.target.decode('latin-1')} HTTP/{request.http_version}"
        )
    if status >= 500:
        level = logger.error
    elif status >= 400:
        level = logger.warning
    else:
        level = logger.info
    level('"%s" %s %s', line, str(status), str(size), extra=_extra(protocol, status))


def log_disconnect(protocol: Any) -> None:
    logger.info("- Broken pipe from %s", protocol.client)
