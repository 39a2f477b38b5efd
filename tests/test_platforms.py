"""What differs on Windows and macOS, exercised on any platform by faking the
missing piece: a loop without signal handlers (Windows' Proactor), no uvloop,
no UNIX domain sockets."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import pytest

from fastbase import cli, server as server_module
from fastbase.config import Config, ConfigError
from fastbase.server import Server


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def make_server() -> Server:
    return Server(Config(app=hello, app_dir=None, port=0, log_level="warning", interface="wsgi"))


class NoLoopSignals(asyncio.SelectorEventLoop):
    """Like the Proactor loop on Windows: no add_signal_handler."""

    def add_signal_handler(self, sig, callback, *args):
        raise NotImplementedError

    def remove_signal_handler(self, sig):  # never reached: nothing was added
        raise AssertionError("remove_signal_handler without add_signal_handler")


@pytest.fixture
def signals_restored():
    """Whatever a test does, the process's handlers are as they were after it."""
    sigs = [s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGBREAK", None)) if s]
    before = {sig: signal.getsignal(sig) for sig in sigs}
    yield before
    for sig, handler in before.items():
        if signal.getsignal(sig) != handler:
            signal.signal(sig, handler)


def test_without_loop_signal_handlers_signal_signal_stops_the_server(monkeypatch, signals_restored):
    monkeypatch.setattr(server_module, "new_event_loop", lambda kind: NoLoopSignals())
    server = make_server()
    seen = {}

    def interrupt_twice(srv: Server) -> None:
        def fire() -> None:
            seen["handler"] = signal.getsignal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # graceful shutdown
            seen["after_first"] = (srv.should_exit, srv.force_exit)
            signal.raise_signal(signal.SIGINT)  # a second Ctrl+C: don't wait

        # Once serve() has installed its handlers (after on_started).
        asyncio.get_running_loop().call_soon(fire)

    server.on_started = interrupt_twice
    server.run()  # returns only if the signal reached the server
    assert seen["handler"] == server.handle_exit
    assert seen["after_first"] == (True, False)
    assert server.force_exit
    # Serving is over: Ctrl+C raises KeyboardInterrupt again, SIGTERM kills.
    for sig, handler in signals_restored.items():
        assert signal.getsignal(sig) == handler


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM")
def test_without_loop_signal_handlers_sigterm_stops_the_server(monkeypatch, signals_restored):
    monkeypatch.setattr(server_module, "new_event_loop", lambda kind: NoLoopSignals())
    server = make_server()
    server.on_started = lambda srv: asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGTERM)
    server.run()
    assert server.should_exit and not server.force_exit
    assert signal.getsignal(signal.SIGTERM) == signals_restored[signal.SIGTERM]


def test_loop_signal_handlers_are_removed_when_serve_returns(signals_restored):
    """serve() inside a loop that outlives it (an embedding app, a test)."""
    server = make_server()
    server.on_started = lambda srv: asyncio.get_running_loop().call_soon(srv.stop)

    async def main() -> None:
        # asyncio.run() has its own SIGINT handler: it must come back too.
        inside = {sig: signal.getsignal(sig) for sig in signals_restored}
        await server.serve()
        # Still inside the loop: nothing of the server's is left installed.
        for sig, handler in inside.items():
            assert signal.getsignal(sig) == handler

    asyncio.run(main())


def test_signal_handlers_are_left_alone_off_the_main_thread(signals_restored):
    server = make_server()
    thread = server.start_in_thread()
    try:
        assert signal.getsignal(signal.SIGINT) == signals_restored[signal.SIGINT]
    finally:
        server.stop()
        thread.join(30)


def test_windows_gets_the_proactor_loop_when_uvloop_is_absent(monkeypatch):
    class FakeProactor:
        pass

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    monkeypatch.setattr(asyncio, "ProactorEventLoop", FakeProactor, raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    assert isinstance(server_module.new_event_loop("auto"), FakeProactor)
    assert isinstance(server_module.new_event_loop("asyncio"), FakeProactor)


def test_uvloop_on_windows_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(ConfigError, match="uvloop does not run on Windows; use --loop asyncio"):
        server_module.new_event_loop("uvloop")


def test_missing_uvloop_elsewhere_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(ConfigError, match=r"uvloop is not installed \(pip install uvloop\)"):
        server_module.new_event_loop("uvloop")
    loop = server_module.new_event_loop("auto")
    try:
        assert isinstance(loop, asyncio.SelectorEventLoop)
    finally:
        loop.close()


def test_uds_without_unix_sockets_is_a_config_error(monkeypatch, capsys):
    monkeypatch.delattr(socket, "AF_UNIX", raising=False)
    with pytest.raises(ConfigError, match="no UNIX domain sockets"):
        Config(app="x:y", uds="fastbase.sock")
    # The command line reports it in one line, before importing the app.
    assert cli.main(["proc_apps:app", "--uds", "fastbase.sock"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastbase: error: --uds: this platform has no UNIX domain sockets")
    assert err.count("\n") == 1
