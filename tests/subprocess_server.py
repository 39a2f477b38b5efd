"""Run ``python -m fastbase ...`` in a subprocess and watch its output.

The server runs with ``tests/`` as its working directory (so ``--app-dir``'s
default finds the helper apps, and a source checkout at the repository root
never shadows the installed package). Its stdout and stderr are read by
threads into a list of lines a test can wait on with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Iterator, List, Optional, Sequence

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
STARTUP_TIMEOUT = 20.0

SERVING_TCP = re.compile(r"serving WSGI on http://127\.0\.0\.1:(\d+) ")
SERVING_UNIX = re.compile(r"serving WSGI on unix:(\S+) ")


def loop_params() -> list:
    """``--loop`` values to parametrize over: asyncio, and uvloop when installed."""
    import pytest

    try:
        import uvloop  # noqa: F401
    except ImportError:
        marks = pytest.mark.skip(reason="uvloop is not installed")
    else:
        marks = ()
    return ["asyncio", pytest.param("uvloop", marks=marks)]


def fastbase_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "fastbase", *args]


def child_env(extra: Optional[dict] = None) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerProcess:
    """A fastbase subprocess; ``stdin`` stays open for apps that read it."""

    def __init__(
        self,
        args: Sequence[str],
        pass_fds: Sequence[int] = (),
        cwd: str = TESTS_DIR,
        env: Optional[dict] = None,
        argv: Optional[List[str]] = None,
    ) -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            argv if argv is not None else fastbase_command(*args),
            cwd=cwd,
            env=child_env(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=tuple(pass_fds),
        )
        self.pid = self.proc.pid
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._open_streams = 2
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "err"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, name: str) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._open_streams -= 1
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: "re.Pattern[str] | str", timeout: float = STARTUP_TIMEOUT) -> "re.Match[str]":
        """The first output line matching ``pattern``; fails on timeout or
        when the process closed its output without printing one."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self._open_streams == 0:
                    raise AssertionError(f"fastbase exited ({self.proc.poll()}) without printing {regex.pattern!r}:\n{self.output()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line matching {regex.pattern!r} within {timeout}s:\n{self.output()}")
                self._cond.wait(remaining)

    def wait_serving(self) -> int:
        """Wait for the startup line; the real TCP port."""
        return int(self.wait_for_line(SERVING_TCP).group(1))

    def peak_rss_kib(self) -> int:
        """The process's peak resident set size (VmHWM) in KiB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc/PID/status")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Kill the process if it still runs; reap it; close every pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        for reader in self._readers:
            reader.join(30)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@contextlib.contextmanager
def server_process(
    *args: str,
    pass_fds: Sequence[int] = (),
    cwd: str = TESTS_DIR,
    env: Optional[dict] = None,
    argv: Optional[List[str]] = None,
) -> Iterator[ServerProcess]:
    """``argv`` replaces the ``python -m fastbase ARGS`` command line."""
    process = ServerProcess(args, pass_fds=pass_fds, cwd=cwd, env=env, argv=argv)
    try:
        yield process
    finally:
        process.close()


def run_fastbase(*args: str, cwd: str = TESTS_DIR, timeout: float = 30.0, argv: Optional[List[str]] = None) -> subprocess.CompletedProcess:
    """Run a fastbase command to completion (for commands that must exit).

    Without an address of its own the command gets ``--port 0``: a command
    expected to fail may still bind first, and the default port 8000 can be
    taken by another run of the suite on this machine (CI runs two at once)."""

    def addressed(words: Sequence[str]) -> bool:
        return any(word.split("=")[0] in ("--port", "--uds", "--fd") for word in words)

    if not addressed(args):
        args = ("--port", "0", *args)
    if argv is not None and not addressed(argv):
        argv = [*argv, "--port", "0"]
    return subprocess.run(
        argv if argv is not None else fastbase_command(*args),
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
