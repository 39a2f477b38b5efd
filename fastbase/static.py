"""``--static URL_PREFIX=DIR``: files served by the server, before the app.

A request whose path starts with a mounted prefix never reaches the app:
``StaticBridge`` wraps the app's bridge and answers it with a ``StaticCycle``
(WSGI and ASGI apps alike). Without ``--static`` nothing is wrapped.

What a client gets (as from nginx, granian's static mount or whitenoise):

- GET and HEAD; any other method 405 with ``Allow: GET, HEAD``.
- ``Content-Type`` from the file name (``mimetypes``), with
  ``charset=utf-8`` for text; ``Last-Modified``, a strong ``ETag``
  (modification time and size) and ``Accept-Ranges: bytes``.
- ``If-None-Match`` (or, without it, ``If-Modified-Since``) -> 304.
- One byte range -> 206 with ``Content-Range``; a range past the end ->
  416 with ``Content-Range: bytes */SIZE``. Several ranges in one request
  get the whole file (200): allowed by RFC 9110 14.2, and what clients that
  send several (rare) handle best. ``If-Range`` that does not match -> the
  whole file.
- The body goes out with the loop's sendfile on plain TCP.
- 404 for anything that is not a regular file under DIR: directories (no
  listings), ``.`` / ``..`` segments, empty segments, percent-encoded
  slashes or backslashes, backslashes, NUL, and symlinks leading out of DIR.

Files are opened and stat-ed on the event loop thread (a local disk answers
in microseconds); the bytes move with sendfile, without the app's threads.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import stat
import time
from typing import Any, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

from .config import ConfigError
from .logs import error_log
from .http.parser import encode_head

__all__ = ["StaticBridge", "parse_mounts"]

#: Types that are text but not text/*: sent with charset=utf-8 too.
_TEXT_TYPES = frozenset({"application/javascript", "application/json", "application/xml", "image/svg+xml", "application/manifest+json"})
_ALLOW = (b"allow", b"GET, HEAD")


def parse_mounts(items: List[Any]) -> List[Tuple[str, str]]:
    """("/prefix/", "/real/dir") pairs from "PREFIX=DIR" strings or pairs;
    ConfigError (one line) for a bad prefix or a missing directory."""
    mounts = []
    for item in items:
        if isinstance(item, str):
            prefix, sep, directory = item.partition("=")
            if not sep or not directory:
                raise ConfigError(f"--static {item!r}: expected URL_PREFIX=DIR, e.g. /static/=staticfiles")
        else:
            prefix, directory = item
        if not prefix.startswith("/"):
            raise ConfigError(f"--static {prefix}={directory}: the URL prefix must start with '/'")
        if not prefix.endswith("/"):
            prefix += "/"
        if not os.path.isdir(directory):
            raise ConfigError(f"--static {prefix}={directory}: {directory!r} is not a directory")
        mounts.append((prefix, os.path.realpath(directory)))
    # The longest prefix first: /static/admin/ wins over /static/.
    mounts.sort(key=lambda mount: len(mount[0]), reverse=True)
    return mounts


def resolve(root: str, rest: bytes) -> Optional[str]:
    """The real path of the file ``rest`` (the raw, percent-encoded path
    after the prefix) names under ``root``, or None when it names none or
    tries to leave ``root``."""
    if not rest or b"\\" in rest or b"\x00" in rest:
        return None
    parts = []
    for raw in rest.split(b"/"):
        segment = unquote_to_bytes(raw) if b"%" in raw else raw
        if not segment or segment in (b".", b"..") or b"/" in segment or b"\\" in segment or b"\x00" in segment:
            return None
        parts.append(os.fsdecode(segment))
    real = os.path.realpath(os.path.join(root, *parts))
    if real != root and real.startswith(root + os.sep):
        return real
    return None


def content_type(path: str) -> bytes:
    kind, encoding = mimetypes.guess_type(path)
    if kind is None or encoding is not None:  # (a .gz is not its content's type)
        return b"application/octet-stream"
    if kind.startswith("text/") or kind in _TEXT_TYPES:
        return f"{kind}; charset=utf-8".encode("latin-1")
    return kind.encode("latin-1")


def _etag_matches(header: bytes, etag: bytes) -> bool:
    """If-None-Match's weak comparison (RFC 9110 13.1.2)."""
    if header.strip() == b"*":
        return True
    for candidate in header.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def _http_date(value: bytes) -> Optional[float]:
    try:
        parsed = email.utils.parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def parse_range(header: bytes, size: int) -> Any:
    """A Range header against a file of ``size`` bytes: (start, end)
    inclusive for one satisfiable range; "unsatisfiable"; or None to send
    the whole file (no usable header, or several ranges)."""
    unit, _, spec = header.partition(b"=")
    if unit.strip().lower() != b"bytes" or not spec or b"," in spec:
        return None
    first, dash, last = spec.strip().partition(b"-")
    if not dash or not (first.isdigit() or first == b"") or not (last.isdigit() or last == b""):
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return (max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored (RFC 9110 14.1.1)
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return (start, min(end, size - 1))


class StaticBridge:
    """The app's bridge, with the mounted prefixes answered first."""

    def __init__(self, inner: Any, mounts: List[Tuple[str, str]], server: Optional[bytes], headers: List[Tuple[str, str]]) -> None:
        self.inner = inner
        self.mounts = [(prefix.encode("latin-1"), root) for prefix, root in mounts]
        self.server = server
        self.early_start = getattr(inner, "early_start", False)
        self.default_headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def new_cycle(self, protocol: Any, request: Any) -> Any:
        path = request.path
        for prefix, root in self.mounts:
            if path.startswith(prefix):
                return StaticCycle(self, protocol, request, root, path[len(prefix) :])
        return self.inner.new_cycle(protocol, request)

    async def startup(self) -> None:
        await self.inner.startup()

    async def shutdown(self) -> None:
        await self.inner.shutdown()


class StaticCycle:
    """One static-file request (the cycle API of fastbase.protocol)."""

    disconnected = False
    headers: Any = None

    def __init__(self, bridge: StaticBridge, protocol: Any, request: Any, root: str, rest: bytes) -> None:
        self.bridge = bridge
        self.protocol = protocol
        self.request = request
        self.root = root
        self.rest = rest
        self.keep_alive = request.keep_alive
        self.t0 = time.perf_counter()

    # the connection's events: a request body (unusual here) is dropped

    def on_body(self, data: bytes) -> None:
        pass

    def on_end(self, eom: Any) -> None:
        pass

    def on_body_error(self, exc: Any) -> None:
        self.keep_alive = False

    def on_disconnect(self) -> None:
        self.disconnected = True

    def on_write_paused(self, paused: bool) -> None:
        pass

    def body_discardable(self) -> bool:
        return not self.request.expect_continue

    # the response

    def start(self, complete: bool = False) -> None:
        request = self.request
        method = request.method
        if method not in (b"GET", b"HEAD"):
            self._simple(405, b"Method Not Allowed\n", [_ALLOW])
            return
        path = resolve(self.root, self.rest)
        fd = -1
        if path is not None:
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                fd = -1
        if path is None or fd < 0:
            self._simple(404, b"Not Found\n")
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                os.close(fd)
                self._simple(404, b"Not Found\n")
                return
        except OSError:
            os.close(fd)
            self._simple(404, b"Not Found\n")
            return
        size = info.st_size
        etag = b'"%x-%x"' % (info.st_mtime_ns, size)
        modified = int(info.st_mtime)
        headers = [
            (b"content-type", content_type(path)),
            (b"last-modified", email.utils.formatdate(modified, usegmt=True).encode()),
            (b"etag", etag),
            (b"accept-ranges", b"bytes"),
        ]
        if self._not_modified(etag, modified):
            os.close(fd)
            self._send_head(304, [h for h in headers if h[0] != b"content-type"], 0)
            return
        status, start, count = 200, 0, size
        range_header = self._header(b"range")
        if range_header is not None and method == b"GET" and self._if_range_holds(etag, modified):
            wanted = parse_range(range_header, size)
            if wanted == "unsatisfiable":
                os.close(fd)
                self._simple(416, b"Range Not Satisfiable\n", [(b"content-range", b"bytes */%d" % size)])
                return
            if wanted is not None:
                status, start = 206, wanted[0]
                count = wanted[1] - wanted[0] + 1
                headers.append((b"content-range", b"bytes %d-%d/%d" % (wanted[0], wanted[1], size)))
        if method == b"HEAD" or count == 0:
            os.close(fd)
            self._send_head(status, headers, count)
            return
        file = open(fd, "rb", buffering=0)
        head = self._head(status, headers, count)
        self.protocol.state.loop.create_task(self._send_file(head, file, start, count, status))

    def _header(self, name: bytes) -> Optional[bytes]:
        for key, value in self.request.headers:
            if key == name:
                return value
        return None

    def _not_modified(self, etag: bytes, modified: int) -> bool:
        # RFC 9110 13.2.2: If-None-Match first; If-Modified-Since only without it.
        none_match = self._header(b"if-none-match")
        if none_match is not None:
            return _etag_matches(none_match, etag)
        since = self._header(b"if-modified-since")
        if since is not None:
            when = _http_date(since)
            return when is not None and modified <= when
        return False

    def _if_range_holds(self, etag: bytes, modified: int) -> bool:
        condition = self._header(b"if-range")
        if condition is None:
            return True
        condition = condition.strip()
        if condition.startswith(b'"'):
            return condition == etag  # a strong comparison (RFC 9110 13.1.5)
        when = _http_date(condition)
        return when is not None and modified == int(when)

    def _head(self, status: int, headers: list, length: int) -> bytes:
        present = {name for name, _ in headers}
        headers = headers + [pair for pair in self.bridge.default_headers if pair[0] not in present]
        self.headers = headers  # (for the access log's %({name}o)s)
        head, _, _, keep_alive = encode_head(
            status,
            headers,
            http11=self.request.http_version == "1.1",
            keep_alive=self.keep_alive and not self.protocol.state.shutting_down,
            head_request=self.request.method == b"HEAD",
            body_length=length,
            server=self.bridge.server,
        )
        self.keep_alive = keep_alive
        return head

    def _send_head(self, status: int, headers: list, length: int) -> None:
        self.protocol.respond(self._head(status, headers, length), self.keep_alive)
        self._log(status, 0)

    def _simple(self, status: int, body: bytes, extra: Optional[list] = None) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8"), *(extra or ())]
        head = self._head(status, headers, len(body))
        self.protocol.respond(head if self.request.method == b"HEAD" else head + body, self.keep_alive)
        self._log(status, 0 if self.request.method == b"HEAD" else len(body))

    async def _send_file(self, head: bytes, file: Any, start: int, count: int, status: int) -> None:
        protocol = self.protocol
        sent = 0
        try:
            protocol.write(head)
            sent = await protocol.send_file(file, start, count)
        except Exception as exc:  # noqa: BLE001
            if not (self.disconnected or protocol.closed):
                error_log.error("Error sending %s", file.name, exc_info=exc)
                protocol.abort()
        finally:
            file.close()
        if sent < count:
            if self.disconnected or protocol.closed:
                protocol.state.log_disconnect(protocol)
            else:
                error_log.error("%s shrank while being sent", file.name)
                protocol.abort()  # the client must see the body cut short
            protocol.finish(False)
        else:
            protocol.finish(self.keep_alive)
        self._log(status, sent)

    def _log(self, status: int, size: int) -> None:
        access_log = self.protocol.state.access_log
        if access_log is not None:
            access_log(self.protocol, self.request, status, size, time.perf_counter() - self.t0, self.headers)
