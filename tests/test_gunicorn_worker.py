"""fastbase.workers.FastbaseWorker under a real gunicorn master (a subprocess):
WSGI and ASGI, keep-alive, heartbeat, max-requests recycling, graceful and
quick shutdown, gunicorn's access-log format, log reopening, a blocked loop
killed and replaced, parent death, --reload, TLS, a failed lifespan startup."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import re
import os
import signal
import socket
import ssl
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gunicorn needs fork()")
gunicorn_config = pytest.importorskip("gunicorn.config")

from subprocess_server import server_process  # noqa: E402

DEADLINE = 30.0
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+) ")
WORKER_READY = re.compile(r"fastbase \S+ serving (WSGI|ASGI) on ")
# gunicorn 24+ opens a control socket in $HOME; parallel masters would share it.
NO_CONTROL_SOCKET = ["--no-control-socket"] if "control_socket_disable" in gunicorn_config.Config().settings else []


def gunicorn_argv(app: str, *options: str) -> list:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "fastbase.workers.FastbaseWorker",
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--graceful-timeout",
        "20",
        *NO_CONTROL_SOCKET,
        *options,
        f"gunicorn_apps:{app}",
    ]


@contextlib.contextmanager
def gunicorn(app: str, *options: str, ready: bool = True):
    """A gunicorn master; ``.port`` once it listens (and, with ``ready``, a
    worker serves). Stopped quickly (SIGINT) if a test leaves it running."""
    with server_process(argv=gunicorn_argv(app, *options)) as master:
        try:
            master.port = int(master.wait_for_line(LISTENING).group(1))
            if ready:
                master.wait_for_line(WORKER_READY)
            yield master
        finally:
            if master.proc.poll() is None:
                master.send_signal(signal.SIGINT)
                with contextlib.suppress(Exception):
                    master.wait(DEADLINE)


def get(port: int, path: str = "/", headers: dict = None, conn: http.client.HTTPConnection = None):
    """(status, headers, JSON body) on ``conn`` or a fresh connection."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, response, json.loads(body) if response.status == 200 else body
    finally:
        if own:
            conn.close()


def in_thread(function, *args):
    """Run ``function(*args)`` on a thread; the returned holder gets
    ``.result`` or ``.error`` by the time ``.join()`` returns."""

    class Holder(threading.Thread):
        result = error = None

        def run(self):
            try:
                self.result = function(*args)
            except BaseException as exc:  # noqa: BLE001
                self.error = exc

    holder = Holder(daemon=True)
    holder.start()
    return holder


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def wait_until(predicate, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- serving ---------------------------------------------------------------------


@pytest.mark.parametrize("app", ["wsgi", "asgi"])
def test_serves_with_keep_alive_and_heartbeat(app):
    # --timeout 1: the master kills a worker silent for 1 s, so serving the
    # same worker for well over that shows the loop's heartbeat works.
    with gunicorn(app, "--timeout", "1", "--keep-alive", "30", "--threads", "4") as master:
        conn = http.client.HTTPConnection("127.0.0.1", master.port, timeout=DEADLINE)
        status, response, first = get(master.port, conn=conn)
        assert status == 200 and response.getheader("server") == "fastbase"
        sock = conn.sock
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            status, _, seen = get(master.port, conn=conn)
            assert status == 200 and seen["pid"] == first["pid"]
            assert conn.sock is sock, "keep-alive connection was not reused"
            time.sleep(0.05)  # pace the requests; the worker must stay idle-alive
        conn.close()
        if app == "asgi":
            assert first["booted_by"] == first["pid"]  # lifespan ran in the worker
            master.wait_for_line(rf"app: lifespan startup {first['pid']}")
        else:
            assert first["multithread"] is True and first["multiprocess"] is False
        assert "WORKER TIMEOUT" not in master.output()


def test_gunicorn_keepalive_is_the_idle_timeout():
    with gunicorn("wsgi", "--keep-alive", "1") as master:
        with socket.create_connection(("127.0.0.1", master.port), timeout=DEADLINE) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            started = time.monotonic()
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 ")
            assert 0.5 < time.monotonic() - started < 10


def test_gunicorn_keepalive_zero_closes_every_connection():
    with gunicorn("wsgi", "--keep-alive", "0") as master:
        status, response, _ = get(master.port)
        assert status == 200 and response.getheader("connection") == "close"


def test_gunicorn_request_limits():
    with gunicorn("wsgi", "--limit-request-line", "64", "--limit-request-fields", "3", "--limit-request-field_size", "40") as master:
        assert get(master.port, "/" + "a" * 40)[0] == 200
        assert get(master.port, "/" + "a" * 60)[0] == 414
        assert get(master.port, headers={"X-A": "1"})[0] == 200  # with Host and Accept-Encoding: 3 fields
        assert get(master.port, headers={"X-A": "1", "X-B": "2"})[0] == 431
        assert get(master.port, headers={"X-Long": "v" * 40})[0] == 431


def test_threads_zero_runs_the_app_on_the_loop():
    with gunicorn("wsgi", "--threads", "0", "--workers", "2") as master:
        status, _, seen = get(master.port)
        assert status == 200 and seen["multithread"] is False and seen["multiprocess"] is True


def test_forwarded_allow_ips_decides_proxy_headers():
    with gunicorn("wsgi", "--forwarded-allow-ips", "127.0.0.1") as master:
        assert get(master.port, headers={"X-Forwarded-For": "198.51.100.7"})[2]["client"] == "198.51.100.7"
    with gunicorn("wsgi", "--forwarded-allow-ips", "10.0.0.1") as master:  # no CIDRs before gunicorn 24
        assert get(master.port, headers={"X-Forwarded-For": "198.51.100.7"})[2]["client"] == "127.0.0.1"


# -- recycling, shutdown, timeouts --------------------------------------------------


def test_max_requests_recycles_the_worker_without_failing_a_request():
    with gunicorn("wsgi", "--max-requests", "3", "--max-requests-jitter", "0") as master:
        conn = http.client.HTTPConnection("127.0.0.1", master.port, timeout=DEADLINE)
        pids = []
        closes = []
        for _ in range(9):
            status, response, seen = get(master.port, conn=conn)  # reconnects after "close"
            assert status == 200
            pids.append(seen["pid"])
            closes.append(response.getheader("connection") == "close")
        conn.close()
        runs = [pids[i : i + 3] for i in range(0, 9, 3)]
        assert all(len(set(run)) == 1 for run in runs), pids
        assert len({run[0] for run in runs}) == 3, pids
        # The last response of each worker tells the client to reconnect.
        assert closes == [False, False, True] * 3
        assert master.output().count("Served 3 requests (--max-requests): restarting this worker") >= 2


@pytest.mark.parametrize("app", ["wsgi", "asgi"])
def test_sigterm_lets_the_request_in_flight_finish(app, tmp_path):
    release = tmp_path / "release"
    with gunicorn(app) as master:
        request = in_thread(get, master.port, f"/hold?{release}")
        pid = int(master.wait_for_line(r"app: holding (\d+)").group(1))
        master.send_signal(signal.SIGTERM)
        master.wait_for_line(rf"Worker stopping gracefully; requests in flight get [\d.]+s \(pid: {pid}\)")
        # That line comes before the loop starts the shutdown; the server's
        # own line comes once its connections know (a response the app sent
        # in between would rightly keep the connection open).
        master.wait_for_line(r"Shutting down: 1 connection\(s\) open, 1 request\(s\) in flight")
        release.touch()
        request.join(DEADLINE)
        assert request.error is None, request.error
        status, response, seen = request.result
        assert status == 200 and seen["pid"] == pid
        assert response.getheader("connection") == "close"
        assert master.wait(DEADLINE) == 0
        if app == "asgi":
            assert f"app: lifespan shutdown {pid}" in master.output()


def test_sigint_stops_without_waiting(tmp_path):
    with gunicorn("wsgi", "--graceful-timeout", "60") as master:
        request = in_thread(get, master.port, f"/hold?{tmp_path / 'never'}")
        master.wait_for_line(r"app: holding \d+")
        started = time.monotonic()
        master.send_signal(signal.SIGINT)
        master.wait(DEADLINE)
        assert time.monotonic() - started < 15  # not the 60 s graceful timeout
        request.join(DEADLINE)
        assert request.error is not None  # the held request was cut off


def test_a_worker_blocking_its_loop_is_killed_and_replaced():
    with gunicorn("wsgi", "--threads", "0", "--timeout", "2") as master:
        first = get(master.port)[2]["pid"]
        blocked = in_thread(get, master.port, "/block")
        master.wait_for_line(rf"app: blocking {first}")
        master.wait_for_line(rf"WORKER TIMEOUT \(pid:{first}\)")
        replacement = int(master.wait_for_line(r"Booting worker with pid: (?!%d\b)(\d+)" % first).group(1))
        status, _, seen = get(master.port)
        assert status == 200 and seen["pid"] == replacement != first
        blocked.join(DEADLINE)
        assert blocked.error is not None  # its connection died with the worker


def test_worker_exits_when_its_master_dies():
    with gunicorn("wsgi", "--timeout", "2") as master:
        worker = get(master.port)[2]["pid"]
        master.proc.kill()
        master.wait(DEADLINE)
        wait_until(lambda: process_gone(worker), f"worker {worker} to notice its parent died")


def test_reload_replaces_the_worker_when_the_code_changes(tmp_path):
    module = tmp_path / "reloadable.py"
    source = 'def app(environ, start_response):\n    start_response("200 OK", [])\n    return [b\'{"pid": 0, "version": %d}\']\n'
    module.write_text(source % 1)
    argv = gunicorn_argv("x")[:-1] + ["--reload", "reloadable:app"]
    # No .pyc: one written in the same second as the change would look current.
    with server_process(argv=argv, cwd=str(tmp_path), env={"PYTHONDONTWRITEBYTECODE": "1"}) as master:
        port = int(master.wait_for_line(LISTENING).group(1))
        master.wait_for_line(WORKER_READY)
        assert get(port)[2]["version"] == 1
        module.write_text(source % 2)
        # gunicorn's polling reloader takes its baseline mtimes when its
        # thread first runs, which on a busy machine can be after the write
        # above: keep moving the mtime forward until a scan sees a change.
        deadline = time.monotonic() + 2 * DEADLINE
        bump = 0
        while get(port)[2]["version"] != 2:
            assert time.monotonic() < deadline, "the worker never reloaded"
            bump += 1
            stamp = time.time() + bump
            os.utime(module, (stamp, stamp))
            time.sleep(0.05)
        master.send_signal(signal.SIGTERM)
        assert master.wait(DEADLINE) == 0


def test_failed_lifespan_startup_stops_gunicorn():
    with gunicorn("asgi_failing_startup", ready=False) as master:
        assert master.wait(DEADLINE) == 3  # gunicorn's "worker failed to boot"
        output = master.output()
        assert "fastbase worker could not start" in output and "no database" in output


# -- logs --------------------------------------------------------------------------

COMBINED = re.compile(
    r'^127\.0\.0\.1 - alice \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /a%20b\?q=1 HTTP/1\.1" 200 (\d+) '
    r'"http://referer\.example/" "agent/1\.0"$'
)


def test_access_log_in_gunicorn_default_format():
    with gunicorn("wsgi", "--access-logfile", "-") as master:
        auth = "Basic " + base64.b64encode(b"alice:secret").decode()
        status, response, seen = get(
            master.port, "/a%20b?q=1", {"Referer": "http://referer.example/", "User-Agent": "agent/1.0", "Authorization": auth}
        )
        assert status == 200
        line = master.wait_for_line(COMBINED)
        assert int(line.group(1)) == int(response.getheader("content-length"))
        with socket.create_connection(("127.0.0.1", master.port), timeout=DEADLINE) as sock:
            sock.sendall(b"NOT HTTP\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")
        master.wait_for_line(r'^127\.0\.0\.1 - - \[.*\] "- - -" 400 \d+ "-" "-"$')


def test_access_log_custom_format_with_forwarded_client():
    fmt = "%(h)s|%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%({x-trace}i)s|%(p)s|%(D)s|%({wsgi.url_scheme}e)s"
    with gunicorn("asgi", "--access-logfile", "-", "--access-logformat", fmt) as master:
        status, _, seen = get(master.port, "/x?y=2", {"X-Trace": "abc123", "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
        assert status == 200
        line = master.wait_for_line(r"^198\.51\.100\.7\|GET\|/x\|y=2\|HTTP/1\.1\|200\|\d+\|abc123\|<(\d+)>\|(\d+)\|https$")
        assert int(line.group(1)) == seen["pid"]


def test_sigusr1_reopens_the_access_log(tmp_path):
    log = tmp_path / "access.log"
    with gunicorn("wsgi", "--access-logfile", str(log)) as master:
        get(master.port, "/before")
        wait_until(lambda: "GET /before" in log.read_text(), "the first access-log line")
        log.rename(tmp_path / "access.log.1")
        master.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + DEADLINE
        while not (log.exists() and "GET /after" in log.read_text()):
            assert time.monotonic() < deadline, "the worker never reopened its access log"
            get(master.port, "/after")
            time.sleep(0.05)


# -- TLS -----------------------------------------------------------------------------


def test_gunicorn_tls_settings(tmp_path):
    x509 = pytest.importorskip("cryptography.x509")
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with server_process(argv=gunicorn_argv("wsgi", "--certfile", str(certfile), "--keyfile", str(keyfile))) as master:
        port = int(master.wait_for_line(r"Listening at: https://127\.0\.0\.1:(\d+) ").group(1))
        master.wait_for_line(r"fastbase \S+ serving WSGI on https://")
        context = ssl.create_default_context(cafile=str(certfile))
        context.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=DEADLINE)
        status, _, seen = get(port, conn=conn)
        conn.close()
        assert status == 200 and seen["scheme"] == "https"
        master.send_signal(signal.SIGTERM)
        assert master.wait(DEADLINE) == 0


@pytest.mark.parametrize("app", ["wsgi", "asgi"])
def test_access_log_response_header_atoms(app):
    fmt = "%(s)s ctype=%({content-type}o)s missing=%({x-none}o)s"
    with gunicorn(app, "--access-logfile", "-", "--access-logformat", fmt) as master:
        assert get(master.port, "/")[0] == 200
        master.wait_for_line(r"^200 ctype=application/json missing=-$")


HOOKS_CONFIG = """
import sys

def pre_request(worker, req):
    print(f"hook: pre {req.method} {req.path} {req.uri} {req.query} {req.version} "
          f"{dict(req.headers).get('X-TRACE')} {worker.pid}", file=sys.stderr, flush=True)

def post_request(worker, req, environ, resp):
    print(f"hook: post {req.method} {req.path} {resp.status} {resp.status_code} {resp.sent} "
          f"{ {k.lower(): v for k, v in resp.headers}.get('content-type')} {environ['REQUEST_METHOD']} {environ['REMOTE_ADDR']}",
          file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("app", ["wsgi", "asgi"])
def test_pre_and_post_request_hooks(tmp_path, app):
    config = tmp_path / "hooks.py"
    config.write_text(HOOKS_CONFIG)
    with gunicorn(app, "--config", str(config)) as master:
        status, response, seen = get(master.port, "/a%20b?x=1", {"X-Trace": "t1"})
        assert status == 200
        master.wait_for_line(rf"^hook: pre GET /a b /a%20b\?x=1 x=1 \(1, 1\) t1 {seen['pid']}$")
        length = response.getheader("content-length")
        master.wait_for_line(rf"^hook: post GET /a b 200 OK 200 {length} application/json GET 127\.0\.0\.1$")


def test_a_failing_hook_is_logged_and_the_request_served(tmp_path):
    config = tmp_path / "hooks.py"
    config.write_text(
        "def pre_request(worker, req):\n    raise ValueError('hook broke')\n\n"
        "def post_request(worker, req):\n    raise ValueError('post hook broke')\n"
    )
    with gunicorn("wsgi", "--config", str(config)) as master:
        assert get(master.port, "/")[0] == 200
        master.wait_for_line("Exception in pre_request hook")
        master.wait_for_line("Exception in post_request hook")
        master.wait_for_line("ValueError: post hook broke")
