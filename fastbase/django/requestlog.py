"""Request logs in runserver's format, through the "django.server" logger."""

from __future__ import annotations

import logging
import time
from http.client import HTTPMessage
from typing import Any, Optional

from django.utils.log import ServerFormatter

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


def access_log(protocol: Any, request: Optional[Any], status: int, size: int, seconds: float, headers: Any = None) -> None:
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
        line = escape(f"{request.method.decode('latin-1')} {request.target.decode('latin-1')} HTTP/{request.http_version}")
    args = (line, str(status), str(size))
    handler = _default_handler(level)
    template = _line_template(handler.formatter, status) if handler is not None else None
    if handler is not None and template is not None:
        # Django's own LOGGING for this logger: write the line its formatter
        # would, without a LogRecord and logging's dispatch (most of the
        # cost of a request on a fast view).
        text = template % (server_time(), *args)
        handler.acquire()
        try:
            handler.stream.write(text + handler.terminator)
            handler.flush()
            return
        except Exception:  # noqa: BLE001 - reported below the way logging does
            pass
        finally:
            handler.release()
        # The write failed (a closed stderr, ...): let logging report it.
    # What logger.info() and co. do, without findCaller's stack walk (the
    # caller is always this function): same record factory, filters and
    # handlers, so LOGGING configs see the same records.
    record = logger.makeRecord(
        logger.name,
        level,
        _PATHNAME,
        _LINENO,
        '"%s" %s %s',
        args,
        None,
        "access_log",
        _extra(protocol, status),
    )
    logger.handle(record)


#: Django's DEFAULT_LOGGING format for "django.server".
_DEFAULT_FORMAT = "[{server_time}] {message}"


def _default_handler(level: int) -> Optional[logging.StreamHandler]:
    """The logger's one handler when "django.server" is set up as Django's
    DEFAULT_LOGGING does it (a StreamHandler with ServerFormatter's default
    format, no filters, no propagation, the stock record factory): then no
    one but that handler sees the record, and its line can be written
    directly. None for any other set-up."""
    if logger.filters or logger.propagate or logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    handlers = logger.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if type(handler) is not logging.StreamHandler or handler.filters or level < handler.level:
        return None
    formatter: Any = handler.formatter
    if type(formatter) is not ServerFormatter or formatter._fmt != _DEFAULT_FORMAT or type(formatter._style) is not logging.StrFormatStyle:
        return None
    return handler


# Per formatter and status code: the formatter's own output for a probe
# record, with its four values replaced by %s. ServerFormatter colours the
# message by status; asking it once per status keeps its colours exactly.
_templates: dict = {}
_templates_for: Any = None
_PROBES = ("\x00time\x00", "\x00line\x00", "\x00status\x00", "\x00size\x00")


def _line_template(formatter: Any, status: int) -> Optional[str]:
    """The line for ``status`` as a %-template, or None where the probe does
    not come back as expected (the record is then logged the usual way)."""
    global _templates, _templates_for
    if formatter is not _templates_for:
        _templates, _templates_for = {}, formatter
    template = _templates.get(status, "")
    if template == "":
        record = logging.LogRecord(logger.name, logging.INFO, _PATHNAME, _LINENO, '"%s" %s %s', _PROBES[1:], None, "access_log")
        record.server_time = _PROBES[0]
        record.status_code = status
        text = formatter.format(record).replace("%", "%%")
        positions = [text.find(probe) for probe in _PROBES]
        if positions == sorted(positions) and all(text.count(probe) == 1 for probe in _PROBES):
            for probe in _PROBES:
                text = text.replace(probe, "%s")
            template = text
        else:
            template = None
        _templates[status] = template
    return template


# Where access_log's records say they come from: this file, as findCaller
# would name it, and the function's first line.
_PATHNAME = access_log.__code__.co_filename
_LINENO = access_log.__code__.co_firstlineno


def log_disconnect(protocol: Any) -> None:
    # server_time: the timestamp of runserver's request lines (logging's own
    # would carry milliseconds).
    logger.info("- Broken pipe from %s", protocol.client, extra={"server_time": server_time()})


def handler_access_log(handler_class: Any, server: Any) -> Any:
    """An access logger that logs each response through ``handler_class``'s
    own ``log_request`` (and so its ``log_message``): a request handler
    class given to a server, whose logging a project or a test customised.
    The handler object is made without running its constructor (which
    would serve a request) and carries what logging methods read."""

    def access_log(protocol: Any, request: Optional[Any], status: int, size: int, seconds: float, headers: Any = None) -> None:
        handler = handler_class.__new__(handler_class)
        transport = protocol.transport
        handler.request = transport.get_extra_info("socket") if transport is not None else None
        handler.client_address = protocol.client
        handler.server = server
        handler.close_connection = True
        handler.headers = headers = HTTPMessage()
        if request is None:
            # What a request handler would have read as the request line: a
            # TLS handshake shows as such (Django explains it in its log).
            handler.command = handler.path = None
            handler.request_version = "HTTP/0.9"
            handler.requestline = "\x16\x03" if protocol.tls_probe else "-"
        else:
            handler.command = request.method.decode("latin-1")
            handler.path = request.target.decode("latin-1")
            handler.request_version = f"HTTP/{request.http_version}"
            handler.requestline = escape(f"{handler.command} {handler.path} {handler.request_version}")
            for name, value in request.headers:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        handler.log_request(status, size)

    return access_log
