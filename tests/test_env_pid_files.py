"""``--env-file`` and ``--pid-file``: the parser on its own, then real processes."""

from __future__ import annotations

import signal
import socket
import textwrap

import pytest

from fastbase.envfile import EnvFileError, load_env_file, parse_env
from subprocess_server import run_fastbase, server_process

DEADLINE = 30.0


def test_parse_env_forms():
    text = textwrap.dedent(
        """\
        # a comment line

        PLAIN=value
        SPACED = value with spaces   # a trailing comment
        export EXPORTED=yes
        SINGLE='kept # as $written\\n'
        DOUBLE="tab\\there \\"quoted\\" # not a comment"
        EMPTY=
        EMPTY_QUOTES=""
        MULTI="first
        second"
        HASH=a#b
        DOTTED.NAME=1
        PLAIN=overridden later
        """
    )
    assert parse_env(text) == {
        "PLAIN": "overridden later",
        "SPACED": "value with spaces",
        "EXPORTED": "yes",
        "SINGLE": "kept # as $written\\n",
        "DOUBLE": 'tab\there "quoted" # not a comment',
        "EMPTY": "",
        "EMPTY_QUOTES": "",
        "MULTI": "first\nsecond",
        "HASH": "a#b",
        "DOTTED.NAME": "1",
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("JUST A LINE\n", "line 1: expected NAME=VALUE"),
        ("OK=1\n1BAD=2\n", "line 2: expected NAME=VALUE"),
        ("A='open\n", "line 1: unterminated single quote"),
        ('A="open\nB=2\n', "line 1: unterminated double quote"),
        ('A="x" trailing\n', "line 1: unexpected text after the quoted value of A"),
    ],
)
def test_parse_env_errors_name_the_line(text, message):
    with pytest.raises(EnvFileError) as info:
        parse_env(text)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_set_variables_win_over_the_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=from-file\nB=from-file\n")
    environ = {"A": "already set"}
    assert load_env_file(str(path), environ) == {"A": "from-file", "B": "from-file"}
    assert environ == {"A": "already set", "B": "from-file"}
    with pytest.raises(EnvFileError, match="no such file"):
        load_env_file(str(tmp_path / "missing"), {})
    with pytest.raises(EnvFileError, match="is a directory"):
        load_env_file(str(tmp_path), {})


ENV_APP = """
import os

# Read at import time: the env file must be loaded before the app is imported.
GREETING = os.environ["FASTBASE_TEST_GREETING"].encode()


def app(environ, start_response):
    start_response("200 OK", [("Content-Length", str(len(GREETING)))])
    return [GREETING]
"""


def get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data
    return data.partition(b"\r\n\r\n")[2]


def test_env_file_is_loaded_before_the_app_is_imported(tmp_path):
    (tmp_path / "envapp.py").write_text(ENV_APP)
    (tmp_path / "site.env").write_text('# settings\nexport FASTBASE_TEST_GREETING="hello from .env"\n')
    args = ("--port", "0", "--app-dir", str(tmp_path), "--env-file", str(tmp_path / "site.env"), "envapp:app")
    with server_process(*args) as server:
        port = server.wait_serving()
        assert get(port) == b"hello from .env"
        server.send_signal(signal.SIGTERM)
        assert server.wait(DEADLINE) == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "--env-file '{path}': no such file"),
        ("NOT AN ASSIGNMENT\n", "--env-file '{path}': line 1: expected NAME=VALUE"),
    ],
)
def test_bad_env_file_is_one_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.env"
    if content is not None:
        path.write_text(content)
    result = run_fastbase("--env-file", str(path), "proc_apps:hello")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("fastbase: error: " + message.format(path=path))


@pytest.mark.parametrize("mode", ["single", "workers", "reload"])
def test_pid_file_written_at_start_and_removed_on_clean_exit(tmp_path, mode):
    pid_file = tmp_path / "run" / "fastbase.pid"
    pid_file.parent.mkdir()
    extra = {"single": (), "workers": ("--workers", "2"), "reload": ("--reload", "--reload-dir", str(tmp_path))}[mode]
    env = {"FASTBASE_RELOAD_POLLING": "1"}
    with server_process("--port", "0", "--pid-file", str(pid_file), *extra, "proc_apps:hello", env=env) as server:
        assert get(server.wait_serving()) == b"hello"  # serving, signal handlers in place
        # The pid of the process that was started: the supervisor or the reloader.
        assert pid_file.read_text() == f"{server.pid}\n"
        server.send_signal(signal.SIGTERM)
        assert server.wait(DEADLINE) == 0, server.output()
    assert not pid_file.exists()


def test_pid_file_in_a_missing_directory_is_one_line(tmp_path):
    result = run_fastbase("--pid-file", str(tmp_path / "nowhere" / "x.pid"), "proc_apps:hello")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"fastbase: error: --pid-file '{tmp_path / 'nowhere' / 'x.pid'}': the directory")


def test_run_refuses_reload_and_honours_env_and_pid_files(tmp_path, monkeypatch):
    import os

    import fastbase
    from fastbase.config import ConfigError
    from fastbase.server import Server

    with pytest.raises(ConfigError, match="--reload needs the fastbase command"):
        fastbase.run("proc_apps:hello", reload=True, app_dir=None)
    env = tmp_path / "x.env"
    env.write_text("FASTBASE_TEST_RUN_ENV=loaded\n")
    pid = tmp_path / "x.pid"
    monkeypatch.delenv("FASTBASE_TEST_RUN_ENV", raising=False)
    seen = {}

    def fake_run(self, *args, **kwargs):
        seen["env"] = os.environ.get("FASTBASE_TEST_RUN_ENV")
        seen["pid"] = pid.read_text()

    monkeypatch.setattr(Server, "run", fake_run)
    fastbase.run(lambda e, s: [], env_file=str(env), pid_file=str(pid), app_dir=None)
    assert seen == {"env": "loaded", "pid": f"{os.getpid()}\n"}
    assert not pid.exists()
    monkeypatch.delenv("FASTBASE_TEST_RUN_ENV", raising=False)
