"""``fastbase --reload`` as a real process tree: edit the app, see the new
code served, with a client hammering the port throughout."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from fastbase.reload import FileFilter, PollingWatcher
from subprocess_server import loop_params, run_fastbase, server_process

DEADLINE = 30.0
APP = """
def app(environ, start_response):
    body = {body!r}
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

try:
    import watchfiles  # noqa: F401
except ImportError:
    WATCHFILES = pytest.param("watchfiles", marks=pytest.mark.skip(reason="watchfiles is not installed"))
else:
    WATCHFILES = "watchfiles"
WATCHERS = [WATCHFILES, "polling"]


def write_app(path: Path, body: bytes) -> None:
    path.write_text(APP.format(body=body))


def get(port: int) -> bytes:
    """GET / on a new connection (as curl does); the body, or raises."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise AssertionError(f"not a 200: {data!r}")
    return body


def wait_for_body(port: int, expected: bytes) -> None:
    deadline = time.monotonic() + DEADLINE
    last = None
    while True:
        try:
            last = get(port)
            if last == expected:
                return
        except (OSError, AssertionError) as exc:
            last = exc
        assert time.monotonic() < deadline, f"{expected!r} never served; last: {last!r}"
        time.sleep(0.02)


class Hammer:
    """Requests on new connections back to back; every failure is kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.done = threading.Event()
        self.failures: list = []
        self.bodies: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                self.bodies.append(get(self.port))
            except (OSError, AssertionError) as exc:
                self.failures.append(repr(exc))

    def __enter__(self) -> "Hammer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(DEADLINE)


def reload_env(watcher: str) -> dict:
    return {"FASTBASE_RELOAD_POLLING": "1" if watcher == "polling" else "0"}


def stop(server) -> None:
    server.send_signal(signal.SIGTERM)
    assert server.wait(DEADLINE) == 0, server.output()


@pytest.mark.parametrize("loop", loop_params())
@pytest.mark.parametrize("watcher", WATCHERS)
def test_edit_restarts_without_refusing_a_connection(tmp_path, watcher, loop):
    source = tmp_path / "reloadapp.py"
    write_app(source, b"one")
    args = ("--reload", "--port", "0", "--loop", loop, "--app-dir", str(tmp_path), "--reload-dir", str(tmp_path), "reloadapp:app")
    with server_process(*args, cwd=str(tmp_path), env=reload_env(watcher)) as server:
        port = server.wait_serving()
        server.wait_for_line(rf"watching .* \({watcher}\)")
        assert get(port) == b"one"
        with Hammer(port) as hammer:
            while len(hammer.bodies) < 20:  # the client is hammering
                time.sleep(0.01)
            write_app(source, b"two")
            wait_for_body(port, b"two")
            server.wait_for_line(r"Shutting down")  # the old process stopped
            seen = len(hammer.bodies)
            while len(hammer.bodies) < seen + 20:  # and the new one keeps serving
                time.sleep(0.01)
        assert hammer.failures == [], hammer.failures[:5]
        assert b"one" in hammer.bodies and b"two" in hammer.bodies
        # Once the new code answered, the old never does again.
        assert b"one" not in hammer.bodies[hammer.bodies.index(b"two") :]
        stop(server)


@pytest.mark.parametrize("watcher", WATCHERS)
def test_syntax_error_keeps_the_old_process_serving_and_a_fix_recovers(tmp_path, watcher):
    source = tmp_path / "reloadapp.py"
    write_app(source, b"good")
    args = ("--reload", "--port", "0", "--app-dir", str(tmp_path), "--reload-dir", str(tmp_path), "reloadapp:app")
    with server_process(*args, cwd=str(tmp_path), env=reload_env(watcher)) as server:
        port = server.wait_serving()
        server.wait_for_line(r"watching")
        with Hammer(port) as hammer:
            source.write_text("def app(environ, start_response:\n")
            line = server.wait_for_line(r"Reload failed: .*")
            assert "SyntaxError" in line.group(0) and "reloadapp.py" in line.group(0)
            assert "the previous code keeps serving" in line.group(0)
            seen = len(hammer.bodies)
            while len(hammer.bodies) < seen + 20:  # the old process still serves
                time.sleep(0.01)
            write_app(source, b"fixed")
            wait_for_body(port, b"fixed")
        assert hammer.failures == [], hammer.failures[:5]
        assert set(hammer.bodies) <= {b"good", b"fixed"}
        assert server.output().count("Reload failed") == 1
        stop(server)


def test_a_broken_app_at_start_waits_for_a_fix(tmp_path):
    source = tmp_path / "reloadapp.py"
    source.write_text("import no_such_module_anywhere\n")
    args = ("--reload", "--port", "0", "--app-dir", str(tmp_path), "--reload-dir", str(tmp_path), "reloadapp:app")
    with server_process(*args, cwd=str(tmp_path), env=reload_env("polling")) as server:
        line = server.wait_for_line(r"Cannot start: .*")
        assert "no_such_module_anywhere" in line.group(0) and "waiting for a change" in line.group(0)
        write_app(source, b"recovered")
        port = server.wait_serving()
        wait_for_body(port, b"recovered")
        stop(server)


def test_reload_include_exclude_patterns(tmp_path):
    """A template matched by --reload-include restarts the server; a file the
    user excluded does not (the next restart shows it was never seen)."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "skipme").mkdir()
    template = tmp_path / "templates" / "page.html"
    template.write_text("first")
    (tmp_path / "reloadapp.py").write_text(
        "import pathlib\n"
        "BODY = (pathlib.Path(__file__).parent / 'templates' / 'page.html').read_bytes()\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', str(len(BODY)))])\n"
        "    return [BODY]\n"
    )
    args = (
        "--reload",
        "--port",
        "0",
        "--app-dir",
        str(tmp_path),
        "--reload-dir",
        str(tmp_path),
        "--reload-include",
        "*.html",
        "--reload-exclude",
        "skipme",
        "reloadapp:app",
    )
    with server_process(*args, cwd=str(tmp_path), env=reload_env("polling")) as server:
        port = server.wait_serving()
        server.wait_for_line(r"watching .* for \*\.py \*\.html")
        (tmp_path / "skipme" / "ignored.py").write_text("x = 1\n")
        template.write_text("second")
        wait_for_body(port, b"second")
        changes = [line for line in server.output().splitlines() if "Changes in" in line]
        assert len(changes) == 1 and "page.html" in changes[0] and "ignored.py" not in changes[0], changes
        stop(server)


def test_file_filter_defaults():
    f = FileFilter(["/src"])
    assert f("/src/app.py") and f("/src/pkg/models.py")
    for path in ("/src/.hidden.py", "/src/app.pyc", "/src/.app.py.swp", "/src/~app.py", "/src/.git/hook.py", "/src/notes.txt"):
        assert not f(path), path
    g = FileFilter(["/src"], includes=["*.html", ".*"], excludes=["migrations"])
    assert g("/src/templates/base.html") and g("/src/.env.py")  # including ".*" takes it off the excludes
    assert not g("/src/app/migrations/0001_initial.py")


def test_polling_watcher_sees_new_changed_and_removed_files(tmp_path):
    keep = tmp_path / "keep.py"
    keep.write_text("a = 1\n")
    gone = tmp_path / "gone.py"
    gone.write_text("b = 1\n")
    watcher = PollingWatcher(FileFilter([str(tmp_path)]), interval=0.01)
    stop = threading.Event()
    keep.write_text("a = 22\n")
    assert watcher.changes(stop) == {str(keep)}
    gone.unlink()
    (tmp_path / "new.py").write_text("c = 1\n")
    (tmp_path / "ignored.txt").write_text("x")
    assert watcher.changes(stop) == {str(gone), str(tmp_path / "new.py")}
    stop.set()
    assert watcher.changes(stop) == set()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--reload", "--workers", "2"), "--reload cannot be used with --workers above 1"),
        (("--reload", "--reload-dir", "/no/such/dir"), "--reload-dir '/no/such/dir' is not a directory"),
    ],
)
def test_bad_reload_options_are_one_line_errors(args, message):
    result = run_fastbase(*args, "proc_apps:hello")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"fastbase: error: {message}")


def test_reloader_stops_its_server_on_sigterm_and_frees_the_port(tmp_path):
    source = tmp_path / "reloadapp.py"
    write_app(source, b"up")
    args = ("--reload", "--port", "0", "--app-dir", str(tmp_path), "--reload-dir", str(tmp_path), "reloadapp:app")
    with server_process(*args, cwd=str(tmp_path), env=reload_env("polling")) as server:
        port = server.wait_serving()
        assert get(port) == b"up"
        stop(server)
    # Nothing is left listening: the reloader's server process exited with it.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize("watcher", WATCHERS)
def test_an_edit_in_the_same_second_with_the_same_size_is_served(tmp_path, watcher):
    """A .pyc is trusted when the source's size and mtime in whole seconds
    match it: the reloader removes the changed module's cached bytecode so
    the new process never imports the old code."""
    source = tmp_path / "reloadapp.py"
    write_app(source, b"one")
    second = (time.time_ns() // 10**9 - 60) * 10**9  # a whole second, a minute ago
    os.utime(source, ns=(second + 100, second + 100))
    args = ("--reload", "--port", "0", "--app-dir", str(tmp_path), "--reload-dir", str(tmp_path), "reloadapp:app")
    env = dict(reload_env(watcher), PYTHONDONTWRITEBYTECODE="")  # bytecode is written, as by default
    with server_process(*args, cwd=str(tmp_path), env=env) as server:
        port = server.wait_serving()
        server.wait_for_line(r"watching")
        assert get(port) == b"one"
        assert list((tmp_path / "__pycache__").glob("reloadapp.*.pyc"))  # records that second and size
        write_app(source, b"two")  # the same size...
        os.utime(source, ns=(second + 200, second + 200))  # ...and the same second
        wait_for_body(port, b"two")
        stop(server)


class FakeReloader:
    """This test as a --reload parent: the listening socket, the report pipe
    it reads and the go pipe it writes, given to one real server process."""

    def __init__(self, server, listener: socket.socket, reports: int, go: int) -> None:
        self.server = server
        self.listener = listener
        self.port = listener.getsockname()[1]
        self.reports = reports
        self.go = go
        self.received = bytearray()

    def read_until(self, token: bytes) -> None:
        deadline = time.monotonic() + DEADLINE
        while token not in self.received:
            assert time.monotonic() < deadline, f"no {token!r} within {DEADLINE}s: {bytes(self.received)!r}"
            readable, _, _ = select.select([self.reports], [], [], 0.5)
            if readable:
                data = os.read(self.reports, 65536)
                assert data, f"the pipe closed before {token!r}: {bytes(self.received)!r}"
                self.received += data

    def close_go(self, word: bytes = b"") -> None:
        """Say ``word`` (b"go") on the go pipe, or nothing, and close it."""
        if word:
            os.write(self.go, word)
        os.close(self.go)
        self.go = -1


@contextlib.contextmanager
def fake_reloader(tmp_path, loop: str, body: bytes = b"", source: str = ""):
    """A server process of the app answering ``body`` (or of the module
    ``source``), started as the reloader starts one, with this test in the
    reloader's place."""
    from fastbase.reload import ENV_FDS, ENV_GO_FD, ENV_PARENT, ENV_READY_FD

    if source:
        (tmp_path / "reloadapp.py").write_text(source)
    else:
        write_app(tmp_path / "reloadapp.py", body)
    listener = socket.create_server(("127.0.0.1", 0))
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    env = {ENV_FDS: str(listener.fileno()), ENV_READY_FD: str(ready_write), ENV_GO_FD: str(go_read), ENV_PARENT: str(os.getpid())}
    args = ("--port", "0", "--loop", loop, "--app-dir", str(tmp_path), "reloadapp:app")
    reloader = None
    try:
        with server_process(*args, cwd=str(tmp_path), env=env, pass_fds=(listener.fileno(), ready_write, go_read)) as server:
            os.close(ready_write)
            os.close(go_read)
            reloader = FakeReloader(server, listener, ready_read, go_write)
            yield reloader
    finally:
        for fd in (ready_read, reloader.go if reloader is not None else go_write):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        listener.close()


@pytest.mark.parametrize("loop", loop_params())
def test_server_process_accepts_only_when_told_and_says_when_it_stopped(tmp_path, loop):
    """The handshake a --reload restart runs, with this test as the reloader:
    the server process reports READY with the app loaded and accepts nothing
    until it is told to go (a request sent meanwhile waits in the queue and
    is answered after); stopping, it reports STOPPED once it accepts no more
    (a connection made then stays in the queue, for the next process)."""
    from fastbase.reload import READY, STOPPED

    with fake_reloader(tmp_path, loop, b"served") as reloader:
        server, port = reloader.server, reloader.port
        reloader.read_until(READY)
        # Loaded, not accepting: the request waits in the accept queue.
        early = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        early.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        # (Nothing answers it meanwhile: a bounded look, not a wait for
        # something to happen.)
        assert select.select([early], [], [], 0.5)[0] == []
        reloader.close_go(b"go")
        server.wait_serving()
        data = b""
        while chunk := early.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"served"), data
        early.close()
        assert get(port) == b"served"
        server.send_signal(signal.SIGTERM)
        reloader.read_until(STOPPED)
        # It accepts no more: a connection made now waits for whoever
        # accepts next, here this test.
        late = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        reloader.listener.settimeout(DEADLINE)
        accepted, _ = reloader.listener.accept()
        accepted.close()
        late.close()
        assert server.wait(DEADLINE) == 0, server.output()


@pytest.mark.parametrize("loop", loop_params())
def test_server_process_stops_without_accepting_when_the_go_pipe_closes(tmp_path, loop):
    """A reloader that stops (or dies) while its new process waits to be told
    to go closes the pipe without a word: the process then exits without
    having accepted anything, and a connection waiting in the queue is left
    to whoever holds the socket."""
    from fastbase.reload import READY, STOPPED

    with fake_reloader(tmp_path, loop, b"never") as reloader:
        server = reloader.server
        reloader.read_until(READY)
        waiting = socket.create_connection(("127.0.0.1", reloader.port), timeout=DEADLINE)
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reloader.close_go()
        assert server.wait(DEADLINE) == 0, server.output()
        assert "serving WSGI" not in server.output()
        reloader.read_until(STOPPED)
        reloader.listener.settimeout(DEADLINE)
        accepted, _ = reloader.listener.accept()  # still in the queue, never taken
        assert accepted.recv(100).startswith(b"GET / HTTP/1.1")
        accepted.close()
        waiting.close()


LIFESPAN_APP = """
import pathlib

EVENTS = pathlib.Path(__file__).with_name("lifespan.log")


async def app(scope, receive, send):
    assert scope["type"] == "lifespan", "this test sends no request"
    while True:
        message = await receive()
        with EVENTS.open("a") as log:
            log.write(message["type"] + "\\n")
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return
"""


@pytest.mark.parametrize("loop", loop_params())
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_server_process_stopped_by_a_signal_while_waiting_to_go_runs_the_lifespan_shutdown(tmp_path, loop, sig):
    """Ctrl+C reaches the whole process group, so also a new process that has
    loaded the app, run its lifespan startup and waits to be told to go: it
    stops cleanly, running the app's shutdown, without accepting anything."""
    from fastbase.reload import READY, STOPPED

    with fake_reloader(tmp_path, loop, source=LIFESPAN_APP) as reloader:
        server = reloader.server
        reloader.read_until(READY)
        assert (tmp_path / "lifespan.log").read_text() == "lifespan.startup\n"
        server.send_signal(sig)
        assert server.wait(DEADLINE) == 0, server.output()
        reloader.read_until(STOPPED)
        assert "serving ASGI" not in server.output()
        assert (tmp_path / "lifespan.log").read_text() == "lifespan.startup\nlifespan.shutdown\n"


@pytest.mark.parametrize("loop", loop_params())
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_that_comes_with_the_go_still_stops_the_server_process(tmp_path, loop, sig):
    """Go, then at once a signal (a reloader told to stop just as it handed
    over): whether the signal lands while the process still waits, as it
    starts accepting or once it serves, the process stops cleanly and runs
    the app's shutdown; the signal is neither lost nor fatal. The moment it
    lands varies, so a few rounds."""
    from fastbase.reload import READY

    for attempt in range(5):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        with fake_reloader(folder, loop, source=LIFESPAN_APP) as reloader:
            server = reloader.server
            reloader.read_until(READY)
            reloader.close_go(b"go")
            server.send_signal(sig)
            assert server.wait(DEADLINE) == 0, server.output()
            assert (folder / "lifespan.log").read_text() == "lifespan.startup\nlifespan.shutdown\n", server.output()
