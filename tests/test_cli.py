"""The ``fastbase`` command as a user runs it: a subprocess per test.

Errors are one line on stderr and a non-zero exit; ``--uds`` and ``--fd``
listen where they are told; SIGTERM/SIGINT shut down gracefully.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sys
import time

import pytest

import fastbase
from servers import read_response, recv_until_closed
from subprocess_server import fastbase_command, loop_params, run_fastbase, server_process

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pass_fds")

EXIT_USAGE = 2  # argparse and option validation
EXIT_FAILURE = 1  # the app did not load, or the server could not listen


def assert_one_error_line(result, *fragments: str, code: int) -> str:
    """``result`` failed with ``code`` and said why in exactly one line."""
    lines = result.stderr.splitlines()
    report = f"exit {result.returncode}, stderr:\n{result.stderr}"
    assert result.returncode == code, report
    assert len(lines) == 1, report
    assert "Traceback" not in result.stderr, report
    assert result.stdout == "", report
    line = lines[0]
    assert line.startswith("fastbase: error: "), report
    for fragment in fragments:
        assert fragment in line, report
    return line


# -- option and app errors ----------------------------------------------------


@pytest.mark.parametrize(
    "args, fragments, code",
    [
        pytest.param(["--bad-flag", "proc_apps:app"], ["unrecognized arguments: --bad-flag"], EXIT_USAGE, id="bad-flag"),
        pytest.param([], ["the following arguments are required: APP"], EXIT_USAGE, id="no-app"),
        pytest.param(["--interface", "cgi", "proc_apps:app"], ["--interface", "'cgi'"], EXIT_USAGE, id="bad-interface"),
        pytest.param(["--port", "http", "proc_apps:app"], ["--port", "'http'"], EXIT_USAGE, id="port-not-a-number"),
        pytest.param(["--port", "70000", "proc_apps:app"], ["--port", "70000"], EXIT_USAGE, id="port-out-of-range"),
        pytest.param(["--threads", "-1", "proc_apps:app"], ["--threads", "'-1'"], EXIT_USAGE, id="negative-threads"),
        pytest.param(
            ["--timeout-graceful-shutdown", "0", "proc_apps:app"], ["--timeout-graceful-shutdown", "'0'"], EXIT_USAGE, id="zero-timeout"
        ),
        pytest.param(
            ["--app-dir", "/nonexistent/dir", "proc_apps:app"], ["--app-dir", "/nonexistent/dir"], EXIT_USAGE, id="missing-app-dir"
        ),
        pytest.param(["--fd", "3", "--uds", "/tmp/x.sock", "proc_apps:app"], ["--uds", "--fd"], EXIT_USAGE, id="uds-and-fd"),
        pytest.param(["nosuchmodule:app"], ["'nosuchmodule'"], EXIT_FAILURE, id="no-such-module"),
        pytest.param(["proc_apps"], ["module:attribute", "'proc_apps'"], EXIT_FAILURE, id="no-attribute-given"),
        pytest.param(["proc_apps:missing_attr"], ["'missing_attr'", "'proc_apps'"], EXIT_FAILURE, id="missing-attribute"),
        pytest.param(["proc_apps:NOT_CALLABLE"], ["not callable"], EXIT_FAILURE, id="not-callable"),
        pytest.param(["proc_apps:app", "--factory"], ["factory"], EXIT_FAILURE, id="factory-needs-arguments"),
        pytest.param(["proc_apps:app", "--fd", "987"], ["fd://987"], EXIT_FAILURE, id="fd-not-open"),
        pytest.param(
            ["proc_apps:app", "--uds", "/nonexistent/dir/fb.sock"], ["unix:/nonexistent/dir/fb.sock"], EXIT_FAILURE, id="uds-dir-missing"
        ),
    ],
)
def test_errors_are_one_line(args, fragments, code):
    assert_one_error_line(run_fastbase(*args), *fragments, code=code)


@pytest.mark.parametrize(
    "source, fragments",
    [
        pytest.param(
            "import os\n\nraise RuntimeError('the database is down\\nsecond line')\n",
            ["importing 'brokenapp' raised RuntimeError: the database is down", "brokenapp.py, line 3"],
            id="raises",
        ),
        pytest.param("def app(environ, start_response)\n    pass\n", ["SyntaxError", "brokenapp.py, line 1"], id="syntax-error"),
        pytest.param(
            "import not_installed_dependency\n",
            ["no module named 'not_installed_dependency'", "brokenapp.py, line 1"],
            id="missing-dependency",
        ),
    ],
)
def test_app_module_failing_on_import_is_one_line(tmp_path, source, fragments):
    (tmp_path / "brokenapp.py").write_text(source)
    result = run_fastbase("--app-dir", str(tmp_path), "brokenapp:app")
    line = assert_one_error_line(result, *fragments, code=EXIT_FAILURE)
    assert "second line" not in line
    assert line.count("brokenapp.py") == 1  # the location once (a SyntaxError's str() has it too)


@pytest.mark.parametrize(
    "app, meant",
    [
        pytest.param("app.py:app", "app:app", id="file-and-attribute"),
        pytest.param("web/app.py:application", "web.app:application", id="path-and-attribute"),
        pytest.param("app.py", "app:app", id="file-alone"),
    ],
)
def test_a_file_path_for_the_module_suggests_the_module(tmp_path, app, meant):
    (tmp_path / "app.py").write_text("raise SystemExit('the file must not be run')\n")
    result = run_fastbase("--app-dir", str(tmp_path), app)
    assert_one_error_line(result, f'did you mean "{meant}"?', code=EXIT_FAILURE)


@pytest.mark.parametrize("level", ["debug", "trace"])
def test_import_error_traceback_at_debug_level(tmp_path, level):
    (tmp_path / "brokenapp.py").write_text("import os\n\ndef helper():\n    raise RuntimeError('the database is down')\n\nhelper()\n")
    result = run_fastbase("--app-dir", str(tmp_path), "--log-level", level, "brokenapp:app")
    assert result.returncode == EXIT_FAILURE, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):", result.stderr
    assert "in helper" in result.stderr and "RuntimeError: the database is down" in result.stderr
    assert lines[-1].startswith("fastbase: error: importing 'brokenapp' raised RuntimeError"), result.stderr
    # Below debug, the one line alone (test_app_module_failing_on_import_is_one_line).
    assert_one_error_line(
        run_fastbase("--app-dir", str(tmp_path), "--log-level", "info", "brokenapp:app"), "RuntimeError", code=EXIT_FAILURE
    )


def test_taken_port_is_one_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = run_fastbase("--port", str(port), "proc_apps:app")
    assert_one_error_line(result, f"127.0.0.1:{port}", "address already in use", code=EXIT_FAILURE)


def test_version():
    result = run_fastbase("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"fastbase {fastbase.__version__} (Python {sys.version.split()[0]})")
    assert result.stderr == ""


def test_help_lists_the_options():
    result = run_fastbase("--help")
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--uds", "--fd", "--interface", "--threads", "--timeout-graceful-shutdown", "--factory"):
        assert option in result.stdout


def _help_entries(text: str) -> dict:
    """--help's options section as {first option string: (placeholder or
    "", description)}."""
    import re

    section = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    entries: dict = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^  (-[\w-]+(?:, -[\w-]+)*)(?: (\S+))?(?:\s{2,}(.*))?$", line)
        if match:
            options, placeholder, description = match.groups()
            current = options.split(", ")[0]
            entries[current] = [placeholder or "", description or ""]
        else:
            assert current is not None, line
            entries[current][1] += " " + line.strip()
    return {option: (placeholder, " ".join(description.split())) for option, (placeholder, description) in entries.items()}


def test_help_uses_one_placeholder_style_and_states_every_default():
    """Every option's value is an uppercase word naming its kind (no
    {choice,lists}, no metavars made from the option name such as ROOT_PATH),
    every option is described and names its default."""
    result = run_fastbase("--help")
    assert result.returncode == 0, result.stderr
    assert "{" not in result.stdout
    entries = _help_entries(result.stdout)
    assert len(entries) > 40
    for option, (placeholder, description) in entries.items():
        if option in ("-h", "--version"):
            continue
        if placeholder:
            # one uppercase word, or two joined the way the value is written (NAME:VALUE)
            assert re.fullmatch(r"[A-Z]+(?:[=:][A-Z]+)?", placeholder), (option, placeholder)
        assert description and description.endswith(")") and "(default: " in description, (option, description)
    # The usage line uses the same placeholders, and APP for the app.
    usage = result.stdout.split("\n\n", 1)[0]
    assert usage.rstrip().endswith("APP") and "{" not in usage


def _entry_points():
    points = [
        pytest.param(fastbase_command(), id="python-m-fastbase"),
        pytest.param([sys.executable, "-c", "import sys; from fastbase.cli import main; sys.exit(main())"], id="cli-main"),
    ]
    script = os.path.join(os.path.dirname(sys.executable), "fastbase")
    marks = () if os.path.exists(script) else pytest.mark.skip(reason="no fastbase console script in this environment")
    points.append(pytest.param([script], marks=marks, id="console-script"))
    return points


@pytest.mark.parametrize("command", _entry_points())
@pytest.mark.parametrize(
    "args", [["--version"], ["--bad-flag", "x:y"], ["nosuchmodule:app"], ["proc_apps:NOT_CALLABLE"]], ids=lambda a: a[0]
)
def test_entry_points_behave_the_same(command, args):
    reference = run_fastbase(*args)
    result = run_fastbase(argv=command + args)
    assert (result.returncode, result.stdout, result.stderr) == (reference.returncode, reference.stdout, reference.stderr)
    assert (result.returncode == 0) is (args == ["--version"])


# -- where it listens ------------------------------------------------------------


def test_python_m_fastbase_serves_and_exits_0_on_sigterm():
    with server_process("proc_apps:app", "--port", "0") as server:
        port = server.wait_serving()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/environ?x=1")
        response = conn.getresponse()
        environ = json.loads(response.read())
        conn.close()
        assert response.status == 200
        assert environ["SERVER_PORT"] == str(port)
        assert environ["QUERY_STRING"] == "x=1"
        assert environ["SERVER_SOFTWARE"] == f"fastbase/{fastbase.__version__}"
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0, server.output()
        assert "Traceback" not in server.output()


@pytest.mark.parametrize("flag", [None, "--no-gc-freeze"])
def test_the_command_freezes_the_loaded_app_out_of_the_gcs_reach(flag):
    """Startup's objects (the app, its modules) go to the GC's permanent
    generation once the app is loaded; --no-gc-freeze leaves them; a server
    embedded in another program never freezes that program's heap."""
    with server_process("proc_apps:gc_frozen", "--port", "0", *([flag] if flag else [])) as server:
        port = server.wait_serving()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        frozen = int(conn.getresponse().read())
        conn.close()
    if flag is None:
        assert frozen > 1000  # the interpreter, fastbase and the app module at least
    else:
        assert frozen == 0


def test_an_embedded_server_does_not_freeze_its_hosts_heap():
    import gc

    from fastbase.config import Config

    assert Config(app="proc_apps:hello").gc_freeze is False
    before = gc.get_freeze_count()
    from servers import serve

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    with serve(app):
        pass
    assert gc.get_freeze_count() == before


def test_factory():
    with server_process("proc_apps:create_app", "--factory", "--port", "0") as server:
        port = server.wait_serving()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"made by the factory"
        conn.close()


def _unix_request(path: str, request: bytes) -> tuple:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(request)
        return read_response(sock, bytearray())


def test_uds(tmp_path):
    path = str(tmp_path / "fb.sock")
    assert len(path) < 100, "AF_UNIX paths are short; use a shorter tmp dir"
    # A socket file left by an earlier run is replaced, not an error.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(path)
    assert os.path.exists(path)
    with server_process("proc_apps:app", "--uds", path) as server:
        server.wait_for_line(f"serving WSGI on unix:{path} ")
        status, headers, body = _unix_request(path, b"GET /environ HTTP/1.1\r\nHost: local\r\n\r\n")
        assert status == 200
        environ = json.loads(body)
        assert environ["PATH_INFO"] == "/environ"
        assert environ["HTTP_HOST"] == "local"
        assert environ["REMOTE_ADDR"] == ""
        status, headers, body = _unix_request(
            path, b"POST /upload HTTP/1.1\r\nHost: local\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        assert status == 200 and json.loads(body)["bytes"] == 3
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0, server.output()
    assert not os.path.exists(path), "the socket file is removed on shutdown"


def test_uds_never_removes_a_file_that_is_not_a_socket(tmp_path):
    path = tmp_path / "settings.py"
    path.write_text("precious = True\n")
    result = run_fastbase("proc_apps:app", "--uds", str(path))
    assert_one_error_line(result, f"unix:{path}", "address already in use", code=EXIT_FAILURE)
    assert path.read_text() == "precious = True\n"


def test_fd():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        with server_process("proc_apps:app", "--fd", str(fd), pass_fds=[fd]) as server:
            assert server.wait_serving() == port
            listener.close()  # the child's copy is the one that accepts now
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/hello")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"hello")
            conn.close()
            server.send_signal(signal.SIGTERM)
            assert server.wait(20) == 0, server.output()


# -- graceful shutdown -------------------------------------------------------------


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _idle_keep_alive_connection(port: int) -> socket.socket:
    """A connection the server has accepted and answered once, now idle."""
    sock = _connect(port)
    sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = read_response(sock, bytearray())
    assert (status, body) == (200, b"hello")
    return sock


@pytest.mark.parametrize("loop", [*loop_params(), "auto"])
def test_the_startup_line_names_the_loop_that_runs(loop):
    """--loop asyncio runs asyncio's own loop even though a plain install
    brings uvloop; auto picks uvloop when it is installed. The ASGI app
    reports the class of the loop it runs on."""
    with server_process("proc_apps:loop_kind", "--port", "0", "--lifespan", "off", "--loop", loop) as server:
        match = server.wait_for_line(r"serving ASGI on http://127\.0\.0\.1:(\d+) \((\w+)\)$")
        connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        connection.request("GET", "/loop")
        running = connection.getresponse().read().decode()
        connection.close()
    if loop == "auto":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            loop = "asyncio"
        else:
            loop = "uvloop"
    assert match.group(2) == loop
    assert running.split(".")[0] == loop, running


@pytest.mark.parametrize("loop", loop_params())
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_lets_in_flight_request_finish(sig, loop):
    with server_process("proc_apps:app", "--port", "0", "--loop", loop, "--timeout-graceful-shutdown", "30") as server:
        port = server.wait_serving()
        with _connect(port) as busy, _idle_keep_alive_connection(port) as idle:
            busy.sendall(b"GET /block/one HTTP/1.1\r\nHost: x\r\n\r\n")
            server.wait_for_line("app: entered /block/one")
            started = time.monotonic()
            server.send_signal(sig)
            # Shutdown closes the listener first, then the idle connections:
            # once this one is closed, no new connection gets in.
            assert recv_until_closed(idle) == b""
            with pytest.raises(ConnectionRefusedError):
                _connect(port).close()
            assert server.proc.poll() is None, "exited with a request in flight"
            server.proc.stdin.write(b"one\n")
            server.proc.stdin.flush()
            status, headers, body = read_response(busy, bytearray())
            assert (status, body) == (200, b"released by one")
            assert headers["connection"] == ["close"]
            assert recv_until_closed(busy) == b""
        assert server.wait(20) == 0, server.output()
        assert time.monotonic() - started < 20
    assert "Traceback" not in server.output()
    assert "timed out" not in server.output()


def test_graceful_shutdown_timeout_bounds_a_request_that_never_finishes():
    timeout = 1.0
    with server_process("proc_apps:app", "--port", "0", "--timeout-graceful-shutdown", str(timeout)) as server:
        port = server.wait_serving()
        with _connect(port) as busy:
            busy.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            server.wait_for_line("app: entered /hang")
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            try:
                data = recv_until_closed(busy)
            except ConnectionResetError:
                data = b""
            cut_off = time.monotonic() - started
            assert data == b"", "the hung request got a response"
            assert server.wait(20) == 0, server.output()
            exited = time.monotonic() - started
    # The request had its full grace period, and not much more.
    assert timeout <= cut_off < timeout + 5, cut_off
    assert exited < timeout + 10, exited
    assert "Graceful shutdown timed out; closing 1 connection(s)" in server.output()


def test_second_sigint_forces_exit():
    with server_process("proc_apps:app", "--port", "0", "--timeout-graceful-shutdown", "60") as server:
        port = server.wait_serving()
        with _connect(port) as busy, _idle_keep_alive_connection(port) as idle:
            busy.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
            server.wait_for_line("app: entered /hang")
            started = time.monotonic()
            server.send_signal(signal.SIGINT)
            assert recv_until_closed(idle) == b""  # the first SIGINT was handled
            server.send_signal(signal.SIGINT)
            assert server.wait(20) == 0, server.output()
    assert time.monotonic() - started < 20, "the second SIGINT did not cut the 60 s grace period short"
