"""Django's WSGIHandler serving tests/djangoproject's ``testsite`` package
(DEBUG off, CSRF middleware on) through ``python -m fastbase
testsite.wsgi:application``.

The server runs in a subprocess so Django's settings never leak into this
test process (other tests configure Django their own way).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import zlib

import httpx
import pytest

from servers import read_response, recv_until_closed
from subprocess_server import TESTS_DIR, server_process

pytest.importorskip("django")

PROJECT_DIR = os.path.join(TESTS_DIR, "djangoproject")
STATIC_HELLO = os.path.join(PROJECT_DIR, "static", "hello.txt")


class Site:
    def __init__(self, process, port):
        self.process = process
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def raw(self, request: bytes) -> tuple:
        """One request on a new connection; (status, headers, body)."""
        with self.connect() as sock:
            sock.sendall(request)
            return read_response(sock, bytearray(), head=request.startswith(b"HEAD "))


@pytest.fixture(scope="module", params=[8, 0], ids=["threads", "inline"])
def site(request):
    args = ["testsite.wsgi:application", "--app-dir", PROJECT_DIR, "--port", "0", "--threads", str(request.param)]
    with server_process(*args, env={"DJANGO_SETTINGS_MODULE": "testsite.settings"}) as process:
        port = process.wait_serving()
        yield Site(process, port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, process.output()
        assert "Traceback" not in process.output()


@pytest.fixture
def client(site):
    with httpx.Client(base_url=site.url, timeout=10) as client:
        yield client


def test_get_with_keep_alive(site):
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == b"Hello from Django\n"
            assert response.getheader("content-type") == "text/plain; charset=utf-8"
            assert response.getheader("content-length") == "18"
            assert response.getheader("x-content-type-options") == "nosniff"  # SecurityMiddleware ran
            assert response.getheader("server") == "fastbase"
    finally:
        conn.close()


def test_post_form(client):
    response = client.post("/echo/?q=1", data={"name": "Ada", "tags": ["a", "b"], "text": "x & y = z"})
    assert response.status_code == 200
    data = response.json()
    assert data["method"] == "POST"
    assert data["GET"] == {"q": ["1"]}
    assert data["content_type"] == "application/x-www-form-urlencoded"
    assert data["POST"] == {"name": ["Ada"], "tags": ["a", "b"], "text": ["x & y = z"]}
    assert data["content_length"] == str(len(data["body"]))


def test_post_json(client):
    payload = {"numbers": [1, 2, 3], "text": "caf\u00e9", "nested": {"ok": True}}
    response = client.post("/echo/", json=payload)
    assert response.status_code == 200
    assert response.json()["json"] == payload


def test_csrf_protected_view_refuses_post(client):
    # The CSRF middleware is active: only the csrf_exempt views take POSTs.
    assert client.post("/", data={"a": "1"}).status_code == 403


def test_chunked_post_reaches_request_body(site):
    """Django reads CONTENT_LENGTH bytes, so fastbase collects a chunked body
    first and passes its length on; request.body and request.POST see it."""
    form = b"name=Ada&text=chunked+body&empty="
    request = (
        b"POST /echo/ HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" % site.host.encode()
    )
    pieces = [form[:5], form[5:6], form[6:]]
    request += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    status, headers, body = site.raw(request)
    assert status == 200, body
    data = json.loads(body)
    assert data["body"] == form.decode()
    assert data["content_length"] == str(len(form))
    assert data["POST"] == {"name": ["Ada"], "text": ["chunked body"], "empty": [""]}


def test_large_chunked_upload_streamed_by_the_view(client):
    """A 6 MB chunked body: spooled to disk by fastbase (Django needs its
    length up front), read back in pieces by the view."""
    pieces = [bytes([i]) * 100_000 + i.to_bytes(4, "big") for i in range(60)]
    expected = b"".join(pieces)
    response = client.post("/upload/", content=iter(pieces), headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200
    assert response.json() == {"bytes": len(expected), "crc32": zlib.crc32(expected), "content_length": str(len(expected))}


def test_streaming_response(site):
    status, headers, body = site.raw(b"GET /stream/?parts=20 HTTP/1.1\r\nHost: %s\r\n\r\n" % site.host.encode())
    assert status == 200
    assert headers["transfer-encoding"] == ["chunked"]
    assert "content-length" not in headers
    assert body == b"".join(b"part %d\n" % i for i in range(20))
    # HTTP/1.0 has no chunked encoding: the end of the body is the close.
    with site.connect() as sock:
        sock.sendall(b"GET /stream/?parts=3 HTTP/1.0\r\nHost: %s\r\n\r\n" % site.host.encode())
        head, _, body = recv_until_closed(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"part 0\npart 1\npart 2\n"


def test_file_response_uses_file_wrapper(client):
    with open(STATIC_HELLO, "rb") as f:
        expected = f.read()
    response = client.get("/file/")
    assert response.status_code == 200
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))


def test_view_that_raises_is_500_and_the_server_goes_on(client, site):
    response = client.get("/boom/")
    assert response.status_code == 500
    assert b"Server Error (500)" in response.content  # Django's page, not a traceback (DEBUG=False)
    assert b"a view that raises" not in response.content
    assert client.get("/").status_code == 200


def test_head(site):
    with site.connect() as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: %s\r\n\r\nGET / HTTP/1.1\r\nHost: %s\r\n\r\n" % (site.host.encode(), site.host.encode()))
        buffered = bytearray()
        status, headers, body = read_response(sock, buffered, head=True)
        assert status == 200
        assert headers["content-length"] == ["18"]
        # The HEAD response carried no body: the next bytes are the GET's response.
        status, headers, body = read_response(sock, buffered)
        assert (status, body) == (200, b"Hello from Django\n")


def test_not_found(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"Not Found" in response.content


def test_disallowed_host_is_400(site):
    status, headers, body = site.raw(b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert status == 400


def test_request_meta(site):
    with site.connect() as sock:
        sock.sendall(
            b"GET /meta/?a=1 HTTP/1.1\r\nHost: %s\r\nX-Forwarded-For: 10.0.0.1\r\nX_Forwarded_For: 6.6.6.6\r\n"
            b"X-Real: yes\r\nX_Spoof: no\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n" % site.host.encode()
        )
        status, headers, body = read_response(sock, bytearray())
        client_port = sock.getsockname()[1]
    assert status == 200
    meta = json.loads(body)
    assert meta["REMOTE_ADDR"] == "127.0.0.1"
    assert meta["REMOTE_PORT"] == str(client_port)
    assert meta["SERVER_PORT"] == str(site.port)
    assert meta["SERVER_NAME"] == "127.0.0.1"
    assert meta["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert meta["REQUEST_METHOD"] == "GET"
    assert meta["PATH_INFO"] == "/meta/"
    assert meta["QUERY_STRING"] == "a=1"
    assert meta["HTTP_HOST"] == site.host
    assert meta["HTTP_COOKIE"] == "a=1; b=2"
    # A header whose name has "_" is dropped: it cannot overwrite the one with "-".
    assert meta["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"
    assert meta["HTTP_X_REAL"] == "yes"
    assert "HTTP_X_SPOOF" not in meta
    assert meta["wsgi.url_scheme"] == "http"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_http11_chunked_upload(site):
    data = b"".join(b"line %d from curl\n" % i for i in range(5000))
    result = subprocess.run(
        [
            "curl",
            "--http1.1",
            "--silent",
            "--show-error",
            "--verbose",
            "--max-time",
            "20",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            "@-",
            "--write-out",
            "\n%{http_code} %{http_version}",
            f"{site.url}/upload/",
        ],
        input=data,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode("latin-1")
    sent = [line[2:].lower() for line in stderr.splitlines() if line.startswith("> ")]
    assert "transfer-encoding: chunked" in sent  # curl really sent it chunked,
    assert not any(line.startswith("content-length") for line in sent)  # without a length
    if "expect: 100-continue" in sent:  # curl asks for it on large uploads
        assert "< HTTP/1.1 100 Continue" in stderr
    body, _, summary = result.stdout.rpartition(b"\n")
    assert summary == b"200 1.1"
    assert json.loads(body) == {"bytes": len(data), "crc32": zlib.crc32(data), "content_length": str(len(data))}
