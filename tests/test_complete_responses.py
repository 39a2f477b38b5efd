"""A client that reads a whole response and closes at once (curl, urllib,
health checks) got a complete response: it is logged as a request, never as
a disconnect. One that leaves mid-body is still a disconnect.

The client here is a raw socket doing what curl does: one request per
connection, read the head and Content-Length bytes, close. The race it hit
(the close seen by the loop before the worker thread had finished the
response) needs many tries to show, hence 200 requests per case.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from subprocess_server import loop_params, server_process

PROJECT = Path(__file__).parent / "djangoproject"
REQUESTS = 200
DEADLINE = 60.0

ACCESS_LINE = re.compile(r'"GET /\?n=(\d+) HTTP/1\.1" 200 ')
DISCONNECT = re.compile(r"disconnected before the response was complete|Broken pipe from")


def fetch_and_close(port: int, target: str) -> bytes:
    """One request on a new connection; the body read to its Content-Length,
    then the socket closed straight away."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed before the head: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        assert head.startswith(b"HTTP/1.1 200 ") and length is not None, head
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "closed mid-body"
            body += chunk
        return body


def leave_mid_body(port: int, target: str) -> None:
    """Read the head and the first piece of a long body, then close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 70000:
            chunk = sock.recv(65536)
            assert chunk, data[:200]
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")


def wait_for_count(cond, lines: list, regex: "re.Pattern[str]", count: int, timeout: float = DEADLINE) -> list:
    """The lines matching ``regex`` once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            found = [line for line in lines if regex.search(line)]
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(found)} of {count} lines matching {regex.pattern!r}:\n" + "\n".join(lines[-50:]))
            cond.wait(min(remaining, 0.5))


def assert_every_request_logged(cond, lines: list) -> None:
    logged = wait_for_count(cond, lines, ACCESS_LINE, REQUESTS)
    numbers = sorted(int(ACCESS_LINE.search(line).group(1)) for line in logged)
    assert numbers == list(range(REQUESTS))
    with cond:
        disconnects = [line for line in lines if DISCONNECT.search(line)]
    assert disconnects == []


def without_uvloop(tmp_path: Path) -> dict:
    """The environment of a plain install (uvloop is an extra): importing
    uvloop fails, so the server runs on asyncio's own loop."""
    blocker = tmp_path / "no_uvloop"
    blocker.mkdir()
    (blocker / "uvloop.py").write_text('raise ImportError("uvloop is not installed in this test")\n')
    return {"PYTHONPATH": str(blocker)}


@pytest.mark.parametrize("loop", loop_params())
@pytest.mark.parametrize("app", ["proc_apps:two_piece_list", "proc_apps:length_iterator", "django"])
def test_client_closing_after_a_complete_response_is_logged_as_a_request(loop, app):
    if app == "django":
        pytest.importorskip("django")
        args, cwd, env = ["mysite.wsgi:application"], str(PROJECT), {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    else:
        args, cwd, env = [app], None, None
    options = ["--access-log", "--port", "0", "--loop", loop, *args]
    with server_process(*options, **({"cwd": cwd} if cwd else {}), env=env) as server:
        port = server.wait_serving()
        for n in range(REQUESTS):
            assert fetch_and_close(port, f"/?n={n}")
        assert_every_request_logged(server._cond, server.lines)


@pytest.mark.parametrize("loop", loop_params())
def test_client_leaving_mid_body_is_a_disconnect(loop):
    with server_process("--access-log", "--port", "0", "--loop", loop, "proc_apps:huge_body") as server:
        port = server.wait_serving()
        leave_mid_body(port, "/big")
        server.wait_for_line(DISCONNECT)
        assert not re.search(r'"GET /big ', server.output())


RUNSERVER_ACCESS_LINE = re.compile(r'^\[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "GET /\?n=(\d+) HTTP/1\.1" 200 17$')


@pytest.mark.parametrize("loop", loop_params())
def test_runserver_logs_every_complete_response_as_a_request(loop, tmp_path):
    """``manage.py runserver`` with fastbase in INSTALLED_APPS: django.server
    request lines, no "Broken pipe" for clients that read everything."""
    pytest.importorskip("django")
    from test_django_runserver import Runserver

    env = without_uvloop(tmp_path) if loop == "asyncio" else None
    with Runserver("0", "--noreload", env=env) as server:
        port = server.port()
        for n in range(REQUESTS):
            assert fetch_and_close(port, f"/?n={n}") == b"Hello from Django"
        logged = wait_for_count(server._changed, server.stderr, RUNSERVER_ACCESS_LINE, REQUESTS)
        assert sorted(int(RUNSERVER_ACCESS_LINE.search(line).group(1)) for line in logged) == list(range(REQUESTS))
        with server._changed:
            assert [line for line in server.stderr if DISCONNECT.search(line)] == []
        # A HEAD response sends no body and logs 0, as Django's runserver does.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"HEAD /?n=head HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
        server.wait_for(r'"HEAD /\?n=head HTTP/1\.1" 200 0$', "stderr")


@pytest.mark.parametrize("loop", loop_params())
def test_runserver_reports_a_client_leaving_mid_body_as_a_broken_pipe(loop, tmp_path):
    pytest.importorskip("django")
    from test_django_runserver import Runserver

    env = without_uvloop(tmp_path) if loop == "asyncio" else None
    with Runserver("0", "--noreload", env=env) as server:
        port = server.port()
        leave_mid_body(port, "/big")
        line = server.wait_for(r"Broken pipe from", "stderr").string
        # runserver's own timestamp format, as on its request lines.
        assert re.match(r"^\[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] - Broken pipe from \('127\.0\.0\.1', \d+\)$", line), line
        with server._changed:
            assert not [line for line in server.stderr if '"GET /big ' in line]


@pytest.mark.parametrize("app", ["proc_apps:hello", "proc_apps:two_piece_list", "proc_apps:length_iterator"])
def test_head_responses_log_no_body_bytes(app):
    """A HEAD response sends no body: its access line says 0, as runserver's
    does (the GET before it logs its body size)."""
    with server_process("--access-log", "--port", "0", app) as server:
        port = server.wait_serving()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /?n=1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /?n=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        size = int(re.search(rb"content-length: (\d+)", data.lower()).group(1))
        assert size > 0 and data.count(b"HTTP/1.1 200 ") == 2
        server.wait_for_line(r'"HEAD /\?n=1 HTTP/1\.1" 200 0 ')
        server.wait_for_line(rf'"GET /\?n=1 HTTP/1\.1" 200 {size} ')
