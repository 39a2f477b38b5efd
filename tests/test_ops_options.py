"""--log-config, --access-log-format and --header, through real processes."""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.request

import pytest

from subprocess_server import loop_params, run_fastbase, server_process

SERVING = re.compile(r"serving (?:WSGI|ASGI) on http://127\.0\.0\.1:(\d+) ")


def fetch(port: int, path: str = "/", headers: dict = None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk


# -- --log-config --------------------------------------------------------------------

DICT_CONFIG = {
    "version": 1,
    "formatters": {"tagged": {"format": "TAGGED %(name)s %(levelname)s %(message)s"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "tagged", "stream": "ext://sys.stdout"}},
    "loggers": {"fastbase": {"handlers": ["out"], "level": "INFO", "propagate": False}},
}

INI_CONFIG = """
[loggers]
keys=root,fastbase

[handlers]
keys=out

[formatters]
keys=tagged

[logger_root]
level=WARNING
handlers=

[logger_fastbase]
level=INFO
handlers=out
qualname=fastbase
propagate=0

[handler_out]
class=StreamHandler
formatter=tagged
args=(sys.stdout,)

[formatter_tagged]
format=TAGGED %(name)s %(levelname)s %(message)s
"""


def _write_config(tmp_path, kind: str) -> str:
    if kind == "json":
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(DICT_CONFIG))
    elif kind == "yaml":
        yaml = pytest.importorskip("yaml")
        path = tmp_path / "logging.yaml"
        path.write_text(yaml.safe_dump(DICT_CONFIG))
    else:
        path = tmp_path / "logging.ini"
        path.write_text(INI_CONFIG)
    return str(path)


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_log_config_files_configure_the_server_loggers(tmp_path, kind):
    path = _write_config(tmp_path, kind)
    with server_process("--port", "0", "--log-config", path, "--access-log", "ops_apps:wsgi") as proc:
        match = proc.wait_for_line(re.compile(r"TAGGED fastbase.error INFO fastbase .* serving WSGI on http://127\.0\.0\.1:(\d+) "))
        port = int(match.group(1))
        fetch(port, "/")
        proc.wait_for_line(re.compile(r'TAGGED fastbase\.access INFO 127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200 5'))
        assert not any(re.match(r"\d{4}-\d\d-\d\d .*\[INFO\]", line) for line in proc.lines), "fastbase's own handler is still set up"


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "bad.json",
            "{not json",
            r"--log-config .*bad\.json: not valid JSON \(Expecting property name enclosed in double quotes, line 1\)",
        ),
        ("list.json", "[1, 2]", r"--log-config .*list\.json: expected a dictConfig mapping, got list"),
        ("bad.ini", "[loggers]\nkeys=root\n", r"--log-config .*bad\.ini: .+"),
        ("broken.ini", "this is not ini", r"--log-config .*broken\.ini: .+"),
        (
            "unknown-handler.json",
            json.dumps({"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}),
            r"--log-config .*unknown-handler\.json: .+",
        ),
    ],
)
def test_a_log_config_that_does_not_parse_is_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    result = run_fastbase("--port", "0", "--log-config", str(path), "ops_apps:wsgi")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch("fastbase: error: " + message, lines[0]), lines[0]


def test_bad_yaml_and_missing_files_are_one_line(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nhandlers: [unclosed\n")
    result = run_fastbase("--port", "0", "--log-config", str(path), "ops_apps:wsgi")
    assert result.returncode != 0
    assert re.fullmatch(r"fastbase: error: --log-config .*bad\.yaml: not valid YAML \(line \d+\)", result.stderr.strip())
    result = run_fastbase("--port", "0", "--log-config", str(tmp_path / "missing.json"), "ops_apps:wsgi")
    assert result.returncode != 0
    assert result.stderr.strip() == f"fastbase: error: --log-config {str(tmp_path / 'missing.json')!r} is not a file"


def test_yaml_without_pyyaml_is_a_clear_error(tmp_path):
    path = tmp_path / "logging.yaml"
    path.write_text("version: 1\n")
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    # A sitecustomize that makes "import yaml" fail, as without PyYAML.
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoYaml:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'yaml':\n"
        "            raise ImportError('No module named yaml')\n"
        "sys.meta_path.insert(0, _NoYaml())\n"
    )
    import subprocess
    import sys

    from subprocess_server import TESTS_DIR, child_env

    env = child_env({"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])})
    result = subprocess.run(
        [sys.executable, "-m", "fastbase", "--port", "0", "--log-config", str(path), "ops_apps:wsgi"],
        cwd=TESTS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == f"fastbase: error: --log-config {path}: YAML files need PyYAML (pip install pyyaml)"


# -- --access-log-format -------------------------------------------------------------

EVERY_ATOM = (
    'h=%(h)s l=%(l)s u=%(u)s t=%(t)s r="%(r)s" m=%(m)s U=%(U)s q=%(q)s H=%(H)s s=%(s)s b=%(b)s B=%(B)s '
    "f=%(f)s a=%(a)s T=%(T)s D=%(D)s M=%(M)s L=%(L)s p=%(p)s i=%({x-trace}i)s o=%({content-type}o)s "
    "e=%({remote_addr}e)s missing=%({x-none}i)s"
)


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
@pytest.mark.parametrize("loop", loop_params())
def test_every_gunicorn_atom(interface, loop):
    with server_process("--port", "0", "--loop", loop, "--access-log-format", EVERY_ATOM, f"ops_apps:{interface}") as proc:
        port = int(proc.wait_for_line(SERVING).group(1))
        reply = raw(
            port,
            b"GET /caf%C3%A9?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Trace: abc\r\nReferer: http://ref/\r\n"
            b"User-Agent: tester/1\r\nAuthorization: Basic dXNlcjpwYXNz\r\nConnection: close\r\n\r\n",
        )
        assert reply.startswith(b"HTTP/1.1 200 ")
        line = proc.wait_for_line(re.compile(r"h=127\.0\.0\.1 .*")).group(0)
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        assert fields["l"] == "-" and fields["u"] == "user"
        assert re.search(r" t=\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ", line), line
        assert fields["r"] == '"GET /caf%C3%A9?x=1&y=2 HTTP/1.1"'
        assert fields["m"] == "GET" and fields["U"] == "/cafÃ©" and fields["q"] == "x=1&y=2" and fields["H"] == "HTTP/1.1"
        assert fields["s"] == "200" and fields["b"] == "5" and fields["B"] == "5"
        assert fields["f"] == "http://ref/" and fields["a"] == "tester/1"
        assert fields["T"] == "0" and int(fields["D"]) >= 0 and fields["M"] == str(int(fields["D"]) // 1000)
        assert re.fullmatch(r"\d+\.\d{6}", fields["L"])
        assert fields["p"] == f"<{proc.pid}>"
        assert fields["i"] == "abc" and fields["o"] == "text/plain" and fields["e"] == "127.0.0.1" and fields["missing"] == "-"


def test_a_rejected_request_is_logged_with_dashes():
    with server_process("--port", "0", "--access-log-format", '%(h)s "%(r)s" %(s)s %(m)s %({user-agent}i)s', "ops_apps:wsgi") as proc:
        port = int(proc.wait_for_line(SERVING).group(1))
        assert raw(port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        proc.wait_for_line(re.compile(r'127\.0\.0\.1 "-" 400 - -$'))


@pytest.mark.parametrize(
    "fmt, message",
    [
        ("%(h)s %(zz)s", "fastbase: error: --access-log-format: unknown atom %(zz)s (see fastbase --help and docs/deployment.md)"),
        ("%(h)s %({x}z)s", "fastbase: error: --access-log-format: unknown atom %({x}z)s (see fastbase --help and docs/deployment.md)"),
        (
            "%(h)s %(s)q",
            "fastbase: error: --access-log-format: '%(h)s %(s)q' is not a valid format (unsupported format character 'q' (0x71) at index 10)",
        ),
    ],
)
def test_a_bad_access_log_format_is_one_line(fmt, message):
    result = run_fastbase("--port", "0", "--access-log-format", fmt, "ops_apps:wsgi")
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_the_default_access_line_is_unchanged():
    with server_process("--port", "0", "--access-log", "ops_apps:wsgi") as proc:
        port = int(proc.wait_for_line(SERVING).group(1))
        fetch(port, "/")
        proc.wait_for_line(re.compile(r'\[INFO\] 127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200 5 \d+\.\dms$'))


# -- --header ------------------------------------------------------------------------


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_default_headers_are_added_unless_the_app_sets_them(interface):
    with server_process(
        "--port",
        "0",
        "--header",
        "X-Frame-Options: DENY",
        "--header",
        "Strict-Transport-Security:max-age=63072000",
        f"ops_apps:{interface}",
    ) as proc:
        port = int(proc.wait_for_line(SERVING).group(1))
        reply = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"X-Frame-Options: DENY\r\n".lower() in reply.lower()
        assert b"strict-transport-security: max-age=63072000\r\n" in reply.lower()
        reply = raw(port, b"GET /header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").lower()
        assert reply.count(b"x-frame-options") == 1 and b"x-frame-options: sameorigin\r\n" in reply
        # The server's own error responses are left alone.
        assert b"x-frame-options" not in raw(port, b"BAD\r\n\r\n").lower()


@pytest.mark.parametrize(
    "value, message",
    [
        ("X-Bad", "fastbase: error: --header 'X-Bad': expected NAME:VALUE"),
        ("Bad Name: x", "fastbase: error: --header 'Bad Name': not a valid header name"),
        ("X-A: b\rc", "fastbase: error: --header X-A: the value contains a control character (CR, LF, NUL, ...)"),
        ("X-A: b\nX-Evil: c", "fastbase: error: --header X-A: the value contains a control character (CR, LF, NUL, ...)"),
        ("Content-Length: 5", "fastbase: error: --header Content-Length: the server sets this header itself"),
    ],
)
def test_bad_headers_are_refused_at_startup(value, message):
    result = run_fastbase("--port", "0", "--header", value, "ops_apps:wsgi")
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_nul_in_a_header_value_is_refused():
    # (A command line cannot carry NUL; the programmatic Config can.)
    from fastbase.config import Config, ConfigError

    with pytest.raises(ConfigError, match=r"^--header X-A: the value contains a control character \(CR, LF, NUL, \.\.\.\)$"):
        Config(app="x:y", app_dir=None, headers=["X-A: b\x00c"])
    assert Config(app="x:y", app_dir=None, headers=[("X-A", "b")]).headers == [("X-A", "b")]
