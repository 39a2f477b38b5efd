"""`manage.py runserver` with "fastbase" in INSTALLED_APPS, as real subprocesses."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

django = pytest.importorskip("django")

PROJECT = Path(__file__).parent / "djangoproject"
DEADLINE = 30.0
# Django's StatReloader takes each file's baseline mtime on its first scan,
# in its own thread, which on a busy machine can run after the server first
# answers: an edit made before that scan is never noticed.
BASELINE_TAKEN = r"File .+[/\\]mysite[/\\]views\.py first seen with mtime"
FASTBASE_LINE = re.compile(r"fastbase \S+ is serving (WSGI|ASGI) at http://(\S+):(\d+)/ \((asyncio|uvloop)\)$", re.M)


class Runserver:
    """A `manage.py runserver` subprocess; output collected line by line."""

    def __init__(self, *args: str, project: Path = PROJECT, env: dict | None = None) -> None:
        child_env = dict(os.environ)
        child_env.pop("PYTHONWARNINGS", None)
        child_env["PYTHONUNBUFFERED"] = "1"
        child_env["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
        child_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", *args],
            cwd=project,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list = []
        self.stderr: list = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        stream.close()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, stream: str = "stdout", timeout: float = DEADLINE, start: int = 0) -> re.Match:
        regex = re.compile(pattern)
        lines = self.stdout if stream == "stdout" else self.stderr
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in lines[start:]:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = end - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    raise AssertionError(
                        f"{pattern!r} not seen on {stream}.\nstdout:\n" + "\n".join(self.stdout) + "\nstderr:\n" + "\n".join(self.stderr)
                    )
                self._changed.wait(min(remaining, 0.5))

    def port(self) -> int:
        return int(self.wait_for(FASTBASE_LINE.pattern).group(3))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(10)
        return self.proc.returncode

    def __enter__(self) -> "Runserver":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def django_banner(lines: list, port: int) -> list:
    """Django's banner, "Django version ..." to "Quit the server ...", port blanked."""
    start = next(i for i, line in enumerate(lines) if line.startswith("Django version "))
    end = next(i for i, line in enumerate(lines) if line.startswith("Quit the server with "))
    return [line.replace(f":{port}/", ":PORT/") for line in lines[start : end + 1]]


@pytest.fixture(scope="module")
def stock_banner() -> list:
    """The installed Django's own runserver banner (staticfiles' command wins
    when fastbase is listed after it), whatever that version's wording."""
    with Runserver("0", "--noreload", "--skip-checks", env={"FASTBASE_TEST_APPS_ORDER": "late"}) as server:
        match = server.wait_for(r"development server at http://127\.0\.0\.1:(\d+)/")
        server.wait_for(r"^Quit the server with ")
        assert not FASTBASE_LINE.search("\n".join(server.stdout)), "fastbase served: not Django's own server"
        return django_banner(server.stdout, int(match.group(1)))


def test_wsgi_runserver_banner_requests_and_logs(stock_banner):
    with Runserver("0", "--noreload") as server:
        port = server.port()
        out = "\n".join(server.stdout)
        assert "Performing system checks..." in out
        assert "unapplied migration(s)" in out
        # Django's banner as this Django version prints it, word for word.
        assert django_banner(server.stdout, port) == stock_banner
        assert f"development server at http://127.0.0.1:{port}/" in out
        import inspect

        from django.core.management.commands import runserver as django_runserver

        if "This is a development server" in inspect.getsource(django_runserver):
            # Django's own production warning (5.1+) is still printed.
            assert "WARNING: This is a development server." in out
        assert FASTBASE_LINE.search(out).group(1) == "WSGI"
        # The line names the loop that serves: uvloop wherever it is installed.
        assert FASTBASE_LINE.search(out).group(4) == ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:
            response = client.get("/")
            assert response.text == "Hello from Django"
            assert response.headers["server"] == "fastbase"
            assert "connection" not in response.headers  # keep-alive
            assert client.get("/static/hello.txt").content == (PROJECT / "static" / "hello.txt").read_bytes()
            # Chunked request bodies reach Django with a CONTENT_LENGTH.
            response = client.post("/echo", content=iter([b"chunk", b"ed!"]))
            assert response.content == b"chunked!"
            assert response.headers["x-content-length"] == "8"
            # runserver's framing: a response without a length closes.
            response = client.get("/stream")
            assert response.text == "".join(f"line {i}\n" for i in range(5))
            assert response.headers["connection"] == "close"
            assert "transfer-encoding" not in response.headers
            assert client.head("/").content == b""
            assert client.get("/boom").status_code == 500
            meta = client.get("/meta", headers={"X_Under": "dropped"}).json()
            assert meta["REMOTE_ADDR"] == "127.0.0.1" and meta["SERVER_PORT"] == str(port)
            assert "HTTP_X_UNDER" not in meta["http_keys"]
        server.wait_for(r'^\[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "GET / HTTP/1.1" 200 17$', "stderr")
        server.wait_for(r'"GET /boom HTTP/1.1" 500 ', "stderr")
        server.wait_for(r'"POST /echo HTTP/1.1" 200 8$', "stderr")
        # A TLS handshake on the plain port gets Django's own explanation.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32))
            assert sock.recv(100).startswith(b"HTTP/1.1 400 ")
        server.wait_for("You're accessing the development server over HTTPS, but it only supports HTTP.", "stderr")


def test_asgi_mode_serves_async_views_and_streams_static_files(tmp_path, stock_banner):
    big = tmp_path / "big.bin"
    payload = os.urandom(1024) * 8 * 1024  # 8 MiB
    big.write_bytes(payload)
    with Runserver("0", "--noreload", "--asgi", env={"FASTBASE_TEST_STATIC": str(tmp_path)}) as server:
        port = server.port()
        assert FASTBASE_LINE.search("\n".join(server.stdout)).group(1) == "ASGI"
        # Django's own banner, except that it never claims WSGI serves.
        banner = django_banner(server.stdout, port)
        assert banner == [line.replace("WSGI development server", "ASGI development server") for line in stock_banner]
        (starting,) = [line for line in banner if "development server at" in line]
        assert "WSGI" not in starting
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert client.get("/async").text == "async ok"
            assert client.get("/").text == "Hello from Django"
            response = client.get("/static/big.bin")
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(payload))
            assert response.content == payload
            assert client.get("/static/missing.txt").status_code == 404
        server.wait_for(r'"GET /async HTTP/1.1" 200 8$', "stderr")


def test_asgi_application_setting_selects_asgi_and_wsgi_flag_overrides():
    with Runserver("0", "--noreload", env={"FASTBASE_TEST_ASGI": "1"}) as server:
        server.port()
        assert FASTBASE_LINE.search("\n".join(server.stdout)).group(1) == "ASGI"
    with Runserver("0", "--noreload", "--wsgi", env={"FASTBASE_TEST_ASGI": "1"}) as server:
        server.port()
        assert FASTBASE_LINE.search("\n".join(server.stdout)).group(1) == "WSGI"


def test_skip_checks_nothreading_and_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        with Runserver(str(busy), "--noreload") as server:
            server.wait_for("Error: That port is already in use.", "stderr")
            assert server.proc.wait(DEADLINE) == 1
    with Runserver("127.0.0.1:0", "--noreload", "--skip-checks", "--nothreading") as server:
        port = server.port()
        assert "Performing system checks" not in "\n".join(server.stdout)
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello from Django"
        # --nothreading runs views on the loop's thread; the ORM still works.
        assert httpx.get(f"http://127.0.0.1:{port}/db").text == "db 1"


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
def test_ipv6_address_forms():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    with Runserver("[::1]:0", "--noreload") as server:
        port = server.port()
        assert f"http://[::1]:{port}/" in "\n".join(server.stdout)
        assert httpx.get(f"http://[::1]:{port}/").text == "Hello from Django"


def test_autoreloader_serves_edited_code(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    views = project / "mysite" / "views.py"
    with socket.socket() as probe:  # a fixed port: port 0 would pick a new one per reload
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with Runserver(str(free), project=project, env={"FASTBASE_TEST_AUTORELOAD_LOG": "1"}) as server:
        port = server.port()
        assert port == free
        assert httpx.get(f"http://127.0.0.1:{port}/version").text == "Hello from Django"
        server.wait_for(BASELINE_TAKEN, stream="stderr")
        seen = len(server.stdout)
        views.write_text(views.read_text().replace('GREETING = "Hello from Django"', 'GREETING = "Reloaded!"'))
        # The reloaded process binds the same port again at once.
        match = server.wait_for(FASTBASE_LINE.pattern, start=seen)
        assert int(match.group(3)) == port
        assert httpx.get(f"http://127.0.0.1:{port}/version").text == "Reloaded!"


def test_check_flags_fastbase_after_staticfiles():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="mysite.settings", FASTBASE_TEST_APPS_ORDER="late")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "fastbase.E001" in result.stderr
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT,
        env=dict(env, FASTBASE_TEST_APPS_ORDER=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_live_server_test_cases():
    """Django's own test runner, with fastbase's LiveServerTestCase and
    StaticLiveServerTestCase (see mysite/tests.py)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="mysite.settings")
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "mysite", "-v", "2"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 4 tests" in result.stderr
    assert "OK" in result.stderr


class _LogTransport:
    """get_extra_info as asyncio's transports have it."""

    def __init__(self, sock=None):
        self.extra = {"socket": sock}

    def get_extra_info(self, name, default=None):
        return self.extra.get(name, default)


class _LogProtocol:
    """What the request log reads from a connection."""

    tls_probe = False
    client = ("127.0.0.1", 5000)

    def __init__(self, transport=None):
        self.transport = transport if transport is not None else _LogTransport()


class _LogRequest:
    def __init__(self, method=b"GET", target=b"/", http_version="1.1"):
        self.method, self.target, self.http_version = method, target, http_version


def test_request_log_record_shape(caplog):
    """The records carry what Django's ServerFormatter and filters expect."""
    from fastbase.django import requestlog

    request = _LogRequest(target=b"/a\x1bb")
    with caplog.at_level(logging.INFO, logger="django.server"):
        requestlog.access_log(_LogProtocol(), request, 200, 12, 0.0)
        requestlog.access_log(_LogProtocol(), request, 404, 0, 0.0)
        requestlog.access_log(_LogProtocol(), request, 503, 0, 0.0)
    ok, missing, failed = caplog.records
    assert ok.getMessage() == '"GET /a\\x1bb HTTP/1.1" 200 12'
    assert (ok.levelno, missing.levelno, failed.levelno) == (logging.INFO, logging.WARNING, logging.ERROR)
    assert ok.status_code == 200 and re.fullmatch(r"\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d", ok.server_time)
    assert hasattr(ok, "request")
    from django.utils.log import ServerFormatter

    assert "200 12" in ServerFormatter("[{server_time}] {message}", style="{").format(ok)


# (name, request or None, status, size, message, level): what runserver's
# WSGIRequestHandler.log_message would log for the same response.
REQUEST_LOG_CASES = [
    ("ok", _LogRequest(target=b"/polls/?q=1"), 200, 12, '"GET /polls/?q=1 HTTP/1.1" 200 12', logging.INFO),
    ("switching-protocols", _LogRequest(target=b"/ws/"), 101, 0, '"GET /ws/ HTTP/1.1" 101 0', logging.INFO),
    ("redirect", _LogRequest(b"POST", b"/login/"), 302, 0, '"POST /login/ HTTP/1.1" 302 0', logging.INFO),
    ("not-modified", _LogRequest(), 304, 0, '"GET / HTTP/1.1" 304 0', logging.INFO),
    ("client-error", _LogRequest(target=b"/nope"), 404, 179, '"GET /nope HTTP/1.1" 404 179', logging.WARNING),
    ("server-error", _LogRequest(b"PUT", b"/x", "1.0"), 500, 145, '"PUT /x HTTP/1.0" 500 145', logging.ERROR),
    ("unparsed-request", None, 400, 0, '"-" 400 0', logging.WARNING),
    (
        "control-characters-escaped",
        _LogRequest(target=b"/a\r\n[01/Jan/2026] \x1b[31m\x7f\x00"),
        200,
        2,
        '"GET /a\\x0d\\x0a[01/Jan/2026] \\x1b[31m\\x7f\\x00 HTTP/1.1" 200 2',
        logging.INFO,
    ),
    # obs-text is latin-1 in the log, as in Django's; only C0 controls and DEL
    # are escaped (a C1 control such as \x85 is not printable but stays).
    ("obs-text-kept", _LogRequest(target=b"/caf\xe9?\x85\xa0"), 200, 2, '"GET /caf\xe9?\x85\xa0 HTTP/1.1" 200 2', logging.INFO),
]


@pytest.mark.parametrize(
    "request_, status, size, message, level", [case[1:] for case in REQUEST_LOG_CASES], ids=[case[0] for case in REQUEST_LOG_CASES]
)
def test_request_log_line(caplog, request_, status, size, message, level):
    """Message, level by status, args and extra keys as runserver logs them,
    and the line runserver prints through Django's DEFAULT_LOGGING formatter."""
    from django.utils.log import DEFAULT_LOGGING, ServerFormatter

    from fastbase.django import requestlog

    sock = object()
    with caplog.at_level(logging.INFO, logger="django.server"):
        requestlog.access_log(_LogProtocol(_LogTransport(sock)), request_, status, size, 0.25)
    (record,) = caplog.records
    assert record.name == "django.server"
    assert (record.getMessage(), record.levelno) == (message, level)
    assert record.msg == '"%s" %s %s' and record.args[1:] == (str(status), str(size))
    assert record.request is sock and record.status_code == status
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d", record.server_time)
    # No stack walk, but the record still says where it comes from.
    assert (record.funcName, record.module) == ("access_log", "requestlog")
    assert record.pathname == requestlog.access_log.__code__.co_filename
    first = requestlog.access_log.__code__.co_firstlineno
    assert first <= record.lineno <= max(line for _, _, line in requestlog.access_log.__code__.co_lines() if line)
    assert record.exc_info is None and record.stack_info is None
    options = DEFAULT_LOGGING["formatters"]["django.server"]
    formatter = ServerFormatter(options["format"], style=options["style"])
    assert formatter.format(record) == f"[{record.server_time}] {message}"


def test_request_log_respects_logger_configuration():
    """A LOGGING config's level, disabled flag, filters and handler levels
    apply as they do to logger.info() and co.; a silenced line costs no work."""
    from fastbase.django import requestlog

    class Untouchable:
        def get_extra_info(self, name, default=None):
            raise AssertionError("a request log nobody sees looked up the socket")

    seen: list = []
    handler_got: list = []

    class Keep(logging.Handler):
        def emit(self, record):
            handler_got.append(record.status_code)

    def only_not_found(record):
        seen.append({key: getattr(record, key) for key in ("request", "server_time", "status_code")})
        return record.status_code == 404

    logger = logging.getLogger("django.server")
    handler = Keep(logging.WARNING)
    saved = (logger.level, logger.disabled, logger.propagate)
    logger.addHandler(handler)
    try:
        logger.propagate = False
        logger.setLevel(logging.WARNING)
        requestlog.access_log(_LogProtocol(Untouchable()), _LogRequest(), 200, 0, 0.0)
        assert handler_got == []
        logger.disabled = True
        requestlog.access_log(_LogProtocol(Untouchable()), _LogRequest(), 500, 0, 0.0)
        assert handler_got == []
        logger.disabled = False
        logger.setLevel(logging.INFO)
        logger.addFilter(only_not_found)
        for status in (200, 404, 500):
            requestlog.access_log(_LogProtocol(), _LogRequest(), status, 0, 0.0)
        assert [entry["status_code"] for entry in seen] == [200, 404, 500]
        assert all(entry["request"] is None and entry["server_time"] for entry in seen)
        assert handler_got == [404]
        handler.setLevel(logging.ERROR)
        requestlog.access_log(_LogProtocol(), _LogRequest(), 404, 0, 0.0)
        assert handler_got == [404]
    finally:
        logger.removeFilter(only_not_found)
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.disabled, logger.propagate = saved[1], saved[2]


def test_request_log_server_time_follows_the_clock(monkeypatch):
    """server_time is cached per second: each call still shows its own second,
    as BaseHTTPRequestHandler.log_date_time_string() would."""
    from http.server import BaseHTTPRequestHandler

    from fastbase.django import requestlog

    handler = BaseHTTPRequestHandler.__new__(BaseHTTPRequestHandler)
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    start = 1_798_761_599.0  # the last second of a year, in UTC
    for offset in (0.0, 0.5, 0.999, 1.0, 1.2, 61.0, 60.9, 3600.0, 86_400 * 40 + 0.4, 0.1):
        now[0] = start + offset
        assert requestlog.server_time() == handler.log_date_time_string(), offset


def test_channels_project_serves_http_and_websockets():
    """A Django Channels ASGI_APPLICATION in `manage.py runserver`, as with
    daphne's runserver, but served by fastbase."""
    pytest.importorskip("channels")
    pytest.importorskip("websockets")
    import asyncio

    from websockets.asyncio.client import connect as ws_connect

    with Runserver("0", "--noreload", env={"FASTBASE_TEST_CHANNELS": "1"}) as server:
        port = server.port()
        assert FASTBASE_LINE.search("\n".join(server.stdout)).group(1) == "ASGI"
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello from Django"

        async def client() -> None:
            async with ws_connect(f"ws://127.0.0.1:{port}/ws/echo/") as ws:
                assert await ws.recv() == "welcome /ws/echo/"
                await ws.send("ping")
                assert await ws.recv() == "echo:ping"
                await ws.send(b"\x00\xff")
                assert await ws.recv() == b"\x00\xff"

        asyncio.run(client())
        server.wait_for(r'"GET /ws/echo/ HTTP/1.1" 101 ', "stderr")


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "coloured"])
def test_request_log_with_django_default_logging_writes_what_logging_would(monkeypatch, colour):
    """With Django's DEFAULT_LOGGING the line is written straight to the
    handler's stream; it must be byte for byte what logging writes (the same
    calls with a filter on the handler, which takes logging's own path),
    ServerFormatter's colours included."""
    import io
    import logging.config

    from django.core.management.color import color_style
    from django.utils.log import DEFAULT_LOGGING

    from fastbase.django import requestlog

    logger = logging.getLogger("django.server")
    saved = (logger.handlers[:], logger.filters[:], logger.level, logger.propagate, logger.disabled)
    try:
        # DEFAULT_LOGGING's part for this logger (its admin mail handler
        # needs settings this test process does not have).
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"django.server": DEFAULT_LOGGING["formatters"]["django.server"]},
                "handlers": {"django.server": DEFAULT_LOGGING["handlers"]["django.server"]},
                "loggers": {"django.server": DEFAULT_LOGGING["loggers"]["django.server"]},
            }
        )
        (handler,) = logger.handlers
        stream = io.StringIO()
        handler.setStream(stream)
        if colour:
            handler.formatter.style = color_style(force_color=True)
        monkeypatch.setattr(requestlog, "server_time", lambda: "27/Nov/2026 02:10:00")
        calls = [(case[1], case[2], case[3]) for case in REQUEST_LOG_CASES] + [
            (_LogRequest(target=b"/100%25?x=%s%d"), 200, 5),
            (_LogRequest(), 103, 0),
            (_LogRequest(), 307, 0),
        ]
        made = []
        real_make_record = logger.makeRecord
        monkeypatch.setattr(logger, "makeRecord", lambda *a, **k: made.append(1) or real_make_record(*a, **k))

        for request, status, size in calls:
            requestlog.access_log(_LogProtocol(), request, status, size, 0.0)
        direct = stream.getvalue()
        assert made == []  # the direct path was taken for every line

        stream.seek(0)
        stream.truncate()
        handler.addFilter(lambda record: True)
        for request, status, size in calls:
            requestlog.access_log(_LogProtocol(), request, status, size, 0.0)
        through_logging = stream.getvalue()
        assert len(made) == len(calls)
    finally:
        logger.handlers[:], logger.filters[:] = saved[0], saved[1]
        logger.setLevel(saved[2])
        logger.propagate, logger.disabled = saved[3], saved[4]
    assert direct == through_logging
    assert direct.count("\n") == len(calls)
    assert ('"GET /100%25?x=%s%d HTTP/1.1" 200 5' in direct) and ("[27/Nov/2026 02:10:00]" in direct)
    assert ("\x1b[" in direct) == colour


def test_autoreload_exit_freezes_the_heap_after_stopping():
    """Under the autoreloader the server runs on a thread and a reload is
    sys.exit(3) on the main thread: DevServer's atexit hook stops the server,
    then freezes the heap, so the interpreter's final collections skip it and
    the old process is gone (and the new one started) ~0.1 s sooner. The
    hook registered here first runs after DevServer's."""
    code = """
import atexit, gc, http.client, sys, threading, time
import django
django.setup()
from django.core.servers.basehttp import WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from fastbase.django.servers import DevServer

server = DevServer(("127.0.0.1", 0), WSGIRequestHandler)
server.set_app(get_wsgi_application())
atexit.register(lambda: print("stopped", server._stopped.is_set(), "frozen", gc.get_freeze_count() > 0, flush=True))
threading.Thread(target=server.serve_forever, daemon=True).start()
deadline = time.monotonic() + 30
while True:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.request("GET", "/version")
        assert conn.getresponse().read() == b"Hello from Django"
        break
    except ConnectionRefusedError:
        assert time.monotonic() < deadline
        time.sleep(0.01)
assert gc.get_freeze_count() == 0
sys.exit(3)
"""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="mysite.settings")
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == ["stopped", "True", "frozen", "True"], result.stderr


def test_autoreload_closes_never_used_connections_at_once_and_finishes_requests_in_flight(tmp_path):
    """A reload (Django's autoreloader exits the child with sys.exit(3)):
    a connection a browser opened and never used is closed at once, not
    after the grace a new connection gets on other shutdowns (60 s here),
    while the old process still finishes a request in flight; only then
    does the new process serve the edited code."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    views = project / "mysite" / "views.py"
    release = tmp_path / "release"
    held = tmp_path / "release.held"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    env = {"FASTBASE_TEST_RELEASE": str(release), "FASTBASE_TEST_FRESH_GRACE": "60", "FASTBASE_TEST_AUTORELOAD_LOG": "1"}
    with Runserver(str(free), project=project, env=env) as server:
        port = server.port()
        assert httpx.get(f"http://127.0.0.1:{port}/version").text == "Hello from Django"
        never_used = socket.create_connection(("127.0.0.1", port))
        in_flight = socket.create_connection(("127.0.0.1", port))
        in_flight.sendall(b"GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n")
        deadline = time.monotonic() + DEADLINE
        while not held.exists():
            assert time.monotonic() < deadline, "the request never reached the view"
            time.sleep(0.01)
        server.wait_for(BASELINE_TAKEN, stream="stderr")
        seen = len(server.stdout)
        views.write_text(views.read_text().replace('GREETING = "Hello from Django"', 'GREETING = "Reloaded!"'))
        # The never-used connection is closed by the old process...
        never_used.settimeout(DEADLINE)
        assert never_used.recv(10) == b""
        # ...which is still serving the held request: nothing came back yet.
        in_flight.setblocking(False)
        with pytest.raises(BlockingIOError):
            in_flight.recv(10)
        in_flight.setblocking(True)
        in_flight.settimeout(DEADLINE)
        release.touch()
        data = b""
        while not data.endswith(b"released"):
            chunk = in_flight.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK")
        match = server.wait_for(FASTBASE_LINE.pattern, start=seen)
        assert int(match.group(3)) == port
        assert httpx.get(f"http://127.0.0.1:{port}/version").text == "Reloaded!"
        never_used.close()
        in_flight.close()
