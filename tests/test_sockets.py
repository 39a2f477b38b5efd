"""Listening sockets: dual-stack, UNIX socket permissions, systemd socket
activation, a bind error named in one line."""

from __future__ import annotations

import os
import socket
import stat
import sys

import pytest

from fastbase.config import Config
from fastbase.sockets import BindError, bind_sockets
from subprocess_server import server_process

SERVING = r"serving WSGI on (\S+) "


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def http_get(family: int, address: tuple) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback on this machine")
def test_dual_stack_bind_serves_ipv4_and_ipv6():
    with server_process("proc_apps:hello", "--host", "::", "--port", "0") as proc:
        url = proc.wait_for_line(SERVING).group(1)
        port = int(url.rsplit(":", 1)[1])
        assert url.startswith("http://[::]:")
        assert http_get(socket.AF_INET6, ("::1", port)).endswith(b"hello")
        assert http_get(socket.AF_INET, ("127.0.0.1", port)).endswith(b"hello")


def test_uds_permissions(tmp_path):
    path = tmp_path / "app.sock"
    with server_process("proc_apps:hello", "--uds", str(path), "--uds-perms", "600") as proc:
        proc.wait_for_line(SERVING)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert http_get(socket.AF_UNIX, str(path)).endswith(b"hello")


@pytest.mark.parametrize("with_pid", [True, False], ids=["LISTEN_PID", "no-LISTEN_PID"])
def test_systemd_socket_activation(with_pid):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    # systemd hands the socket over as fd 3 and names the receiving pid; an
    # exec keeps the pid, so the wrapper can name its own.
    wrapper = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_FDS'] = '1'; "
        + ("os.environ['LISTEN_PID'] = str(os.getpid()); " if with_pid else "")
        + "os.execv(sys.executable, [sys.executable, '-m', 'fastbase', 'proc_apps:hello', '--port', '1'])"
    )
    try:
        argv = [sys.executable, "-c", wrapper, str(listener.fileno())]
        with server_process(pass_fds=(listener.fileno(),), argv=argv) as proc:
            proc.wait_for_line(SERVING)
            listener.close()
            assert http_get(socket.AF_INET, ("127.0.0.1", port)).endswith(b"hello")
    finally:
        listener.close()


def test_bind_error_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(BindError) as info:
            bind_sockets(Config(port=port, app_dir=None))
    assert str(info.value) == f"cannot listen on 127.0.0.1:{port}: address already in use"


def test_port_zero_with_several_addresses_shares_one_port():
    sockets = bind_sockets(Config(host="localhost", port=0, app_dir=None))
    try:
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_accepted_connections_have_tcp_nodelay(loop):
    """Without TCP_NODELAY a second small response written before the first
    is acknowledged waits for the client's delayed ACK (pipelining)."""
    pytest.importorskip(loop)
    from servers import connect, read_response, serve

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve(app, loop=loop) as server, connect(server) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(client, bytearray())[2] == b"ok"
        (conn,) = server.state.connections
        sock = conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
