"""--static URL_PREFIX=DIR: files served by the server before the app.

Requests go over raw sockets: HTTP clients normalise paths (``..``,
``%2e%2e``) before sending them, which would hide what the server does with
a traversal attempt.
"""

from __future__ import annotations

import email.utils
import os
import socket
import subprocess
import sys
from typing import Dict, Tuple

import pytest

import ops_apps
from servers import serve
from subprocess_server import child_env, loop_params, run_fastbase, server_process

CSS = b"body { color: red; }\n" * 10
BIG = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "css" / "site.css").write_bytes(CSS)
    (root / "big.bin").write_bytes(BIG)
    (root / "empty.txt").write_bytes(b"")
    (root / "app.js").write_bytes(b"alert(1)\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n")
    (root / "with space.txt").write_bytes(b"spaced\n")
    (root / "sub").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret\n")
    (root / "escape.txt").symlink_to(secret)
    (root / "inside.css").symlink_to(root / "css" / "site.css")
    (root / "escape-dir").symlink_to(tmp_path)
    return root


def request(port: int, target: bytes, method: bytes = b"GET", headers: bytes = b"") -> Tuple[int, Dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
        data = b""
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, val = line.partition(":")
        fields[name.strip().lower()] = val.strip()
    if "content-length" in fields and method != b"HEAD":
        assert len(body) == int(fields["content-length"]), "body shorter than its Content-Length"
    return status, fields, body


@pytest.fixture(params=["wsgi", "asgi"])
def app(request):
    return ops_apps.wsgi if request.param == "wsgi" else ops_apps.asgi


@pytest.fixture(params=loop_params())
def loop(request):
    return request.param


def test_a_file_with_its_type_validators_and_body(tree, app, loop):
    with serve(app, loop=loop, static=[f"/static/={tree}"]) as server:
        status, fields, body = request(server.port, b"/static/css/site.css")
        assert status == 200 and body == CSS
        assert fields["content-type"] == "text/css; charset=utf-8"
        assert fields["content-length"] == str(len(CSS))
        assert fields["accept-ranges"] == "bytes"
        assert fields["etag"].startswith('"') and fields["etag"].endswith('"')
        mtime = os.stat(tree / "css" / "site.css").st_mtime
        assert fields["last-modified"] == email.utils.formatdate(int(mtime), usegmt=True)
        assert request(server.port, b"/static/app.js")[1]["content-type"] in (
            "text/javascript; charset=utf-8",
            "application/javascript; charset=utf-8",
        )
        assert request(server.port, b"/static/logo.png")[1]["content-type"] == "image/png"
        assert request(server.port, b"/static/with%20space.txt")[2] == b"spaced\n"
        status, fields, body = request(server.port, b"/static/empty.txt")
        assert (status, fields["content-length"], body) == (200, "0", b"")
        # Outside the prefix: the app.
        assert request(server.port, b"/")[2] == b"hello"
        assert request(server.port, b"/staticfoo")[2] == b"hello"


def test_a_large_file_arrives_whole(tree, app, loop):
    with serve(app, loop=loop, static=[f"/static/={tree}"]) as server:
        status, fields, body = request(server.port, b"/static/big.bin")
        assert status == 200 and body == BIG
        assert fields["content-type"] == "application/octet-stream"


def test_head_sends_the_headers_without_the_body(tree, app):
    with serve(app, static=[f"/static/={tree}"]) as server:
        status, fields, body = request(server.port, b"/static/css/site.css", b"HEAD")
        assert status == 200 and body == b""
        assert fields["content-length"] == str(len(CSS))


def test_conditional_requests_answer_304(tree, app):
    with serve(app, static=[f"/static/={tree}"]) as server:
        _, fields, _ = request(server.port, b"/static/css/site.css")
        etag, modified = fields["etag"].encode(), fields["last-modified"].encode()
        for headers in (
            b"If-None-Match: " + etag + b"\r\n",
            b'If-None-Match: "other", W/' + etag + b"\r\n",
            b"If-None-Match: *\r\n",
            b"If-Modified-Since: " + modified + b"\r\n",
            b"If-Modified-Since: " + email.utils.formatdate(2**31, usegmt=True).encode() + b"\r\n",
        ):
            status, got, body = request(server.port, b"/static/css/site.css", headers=headers)
            assert (status, body) == (304, b""), headers
            assert got["etag"] == fields["etag"]
        # A stale validator gets the file; If-None-Match outranks If-Modified-Since.
        for headers in (
            b'If-None-Match: "other"\r\n',
            b"If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n",
            b'If-None-Match: "other"\r\nIf-Modified-Since: ' + modified + b"\r\n",
            b"If-Modified-Since: not a date\r\n",
        ):
            status, _, body = request(server.port, b"/static/css/site.css", headers=headers)
            assert (status, body) == (200, CSS), headers


@pytest.mark.parametrize(
    "spec, first, last",
    [
        (b"bytes=0-9", 0, 9),
        (b"bytes=10-", 10, len(CSS) - 1),
        (b"bytes=-5", len(CSS) - 5, len(CSS) - 1),
        (b"bytes=5-100000", 5, len(CSS) - 1),
        (b"bytes=-100000", 0, len(CSS) - 1),
    ],
)
def test_a_single_range_is_206(tree, app, spec, first, last):
    with serve(app, static=[f"/static/={tree}"]) as server:
        status, fields, body = request(server.port, b"/static/css/site.css", headers=b"Range: " + spec + b"\r\n")
        assert status == 206
        assert fields["content-range"] == f"bytes {first}-{last}/{len(CSS)}"
        assert body == CSS[first : last + 1]


def test_ranges_unsatisfiable_several_or_stale(tree, app):
    with serve(app, static=[f"/static/={tree}"]) as server:
        for spec in (b"bytes=100000-", b"bytes=-0"):
            status, fields, _ = request(server.port, b"/static/css/site.css", headers=b"Range: " + spec + b"\r\n")
            assert status == 416 and fields["content-range"] == f"bytes */{len(CSS)}"
        # Several ranges, an unknown unit, a malformed or backwards range: the whole file.
        for spec in (b"bytes=0-1,5-6", b"items=0-1", b"bytes=abc", b"bytes=9-2"):
            status, fields, body = request(server.port, b"/static/css/site.css", headers=b"Range: " + spec + b"\r\n")
            assert (status, body) == (200, CSS), spec
            assert "content-range" not in fields
        _, fields, _ = request(server.port, b"/static/css/site.css")
        status, _, body = request(server.port, b"/static/css/site.css", headers=b'Range: bytes=0-3\r\nIf-Range: "stale"\r\n')
        assert (status, body) == (200, CSS)
        status, _, body = request(
            server.port, b"/static/css/site.css", headers=b"Range: bytes=0-3\r\nIf-Range: " + fields["etag"].encode() + b"\r\n"
        )
        assert (status, body) == (206, CSS[:4])
        # HEAD ignores Range.
        status, fields, _ = request(server.port, b"/static/css/site.css", b"HEAD", b"Range: bytes=0-3\r\n")
        assert status == 200 and fields["content-length"] == str(len(CSS))


def test_other_methods_are_405_with_allow(tree, app):
    with serve(app, static=[f"/static/={tree}"]) as server:
        for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS"):
            status, fields, _ = request(server.port, b"/static/css/site.css", method)
            assert status == 405 and fields["allow"] == "GET, HEAD", method


@pytest.mark.parametrize(
    "target",
    [
        b"/static/../secret.txt",
        b"/static/css/../../secret.txt",
        b"/static/%2e%2e/secret.txt",
        b"/static/%2E%2E/secret.txt",
        b"/static/.%2e/secret.txt",
        b"/static/..%2fsecret.txt",
        b"/static/css%2f..%2f..%2fsecret.txt",
        b"/static/%2e%2e%2fsecret.txt",
        b"/static/..\\secret.txt",
        b"/static/..%5csecret.txt",
        b"/static/css%5c..%5c..%5csecret.txt",
        b"/static/css/site.css%00.png",
        b"/static/%00",
        b"/static/escape.txt",
        b"/static/escape-dir/secret.txt",
        b"/static/./css/site.css",
        b"/static//css/site.css",
        b"/static/%2fetc/passwd",
        b"/static/",
        b"/static/css",
        b"/static/css/",
        b"/static/sub",
        b"/static/nothing.txt",
    ],
)
def test_traversal_symlinks_out_directories_and_missing_files_are_404(tree, app, target):
    with serve(app, static=[f"/static/={tree}"]) as server:
        status, _, body = request(server.port, target)
        assert status == 404, target
        assert b"secret" not in body and CSS not in body


def test_a_symlink_inside_the_directory_is_served(tree, app):
    with serve(app, static=[f"/static/={tree}"]) as server:
        status, _, body = request(server.port, b"/static/inside.css")
        assert (status, body) == (200, CSS)


def test_several_mounts_the_longest_prefix_wins(tree, tmp_path, app):
    other = tmp_path / "other"
    other.mkdir()
    (other / "site.css").write_bytes(b"other\n")
    with serve(app, static=[f"/static/={tree}", f"/static/css/={other}", ("/media", str(other))]) as server:
        assert request(server.port, b"/static/css/site.css")[2] == b"other\n"
        assert request(server.port, b"/media/site.css")[2] == b"other\n"
        assert request(server.port, b"/static/app.js")[2] == b"alert(1)\n"


def test_keep_alive_across_static_and_app_responses(tree, app):
    with serve(app, static=[f"/static/={tree}"]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"GET /static/css/site.css HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /static/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.count(b"HTTP/1.1 200 OK\r\n") == 3
        assert data.index(CSS) < data.index(b"hello") < data.index(b"alert(1)")


def test_default_headers_reach_static_responses(tree, app):
    with serve(app, static=[f"/static/={tree}"], headers=["X-Frame-Options: DENY"]) as server:
        assert request(server.port, b"/static/css/site.css")[1]["x-frame-options"] == "DENY"
        assert request(server.port, b"/static/nothing")[1]["x-frame-options"] == "DENY"


def test_the_cli_serves_static_files(tree):
    with server_process("--port", "0", "--static", f"/assets/={tree}", "ops_apps:wsgi") as proc:
        port = proc.wait_serving()
        assert request(port, b"/assets/css/site.css")[2] == CSS
        assert request(port, b"/assets/../secret.txt")[0] == 404


@pytest.mark.parametrize(
    "value, message",
    [
        ("/static/=/no/such/dir", "fastbase: error: --static /static/=/no/such/dir: '/no/such/dir' is not a directory"),
        ("static/=.", "fastbase: error: --static static/=.: the URL prefix must start with '/'"),
        ("/static/", "fastbase: error: --static '/static/': expected URL_PREFIX=DIR, e.g. /static/=staticfiles"),
    ],
)
def test_bad_static_options_are_one_line(value, message):
    result = run_fastbase("--static", value, "ops_apps:wsgi")
    assert result.returncode != 0
    assert result.stderr.strip() == message


DJANGO_SETTINGS = """
SECRET_KEY = "static-test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
ROOT_URLCONF = "site_urls"
STATIC_URL = "/static/"
STATIC_ROOT = {root!r}
DATABASES = {{}}
USE_TZ = True
"""


def test_django_collectstatic_output_is_served(tmp_path):
    django = pytest.importorskip("django")
    project = tmp_path / "project"
    project.mkdir()
    root = tmp_path / "collected"
    (project / "site_settings.py").write_text(DJANGO_SETTINGS.format(root=str(root)))
    (project / "site_urls.py").write_text("urlpatterns = []\n")
    (project / "site_wsgi.py").write_text("from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n")
    env = child_env({"DJANGO_SETTINGS_MODULE": "site_settings", "PYTHONPATH": str(project)})
    subprocess.run(
        [sys.executable, "-m", "django", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=project,
        env=env,
        check=True,
        timeout=120,
    )
    css = root / "admin" / "css" / "base.css"
    assert css.is_file(), f"collectstatic wrote no admin CSS (Django {django.__version__})"
    with server_process(
        "--port",
        "0",
        "--static",
        f"/static/={root}",
        "--app-dir",
        str(project),
        "site_wsgi:application",
        cwd=str(project),
        env={"DJANGO_SETTINGS_MODULE": "site_settings"},
    ) as proc:
        port = proc.wait_serving()
        status, fields, body = request(port, b"/static/admin/css/base.css")
        assert status == 200 and body == css.read_bytes()
        assert fields["content-type"] == "text/css; charset=utf-8"
        status, _, _ = request(port, b"/static/admin/css/base.css", headers=b"If-None-Match: " + fields["etag"].encode() + b"\r\n")
        assert status == 304
        assert request(port, b"/static/admin/css/nothing.css")[0] == 404
        # Everything else is still Django's (no URL matches: its 404 page).
        status, _, body = request(port, b"/admin/")
        assert status == 404 and b"Not Found" in body
