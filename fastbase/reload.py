"""``--reload``: restart the server process when the app's source changes.

The reloader process binds the listening sockets once and never serves; each
server process is a fresh ``python -m fastbase`` that inherits them (as with
``--fd`` or the ``--workers`` supervisor), so the port is never closed and no
connection is refused during a restart: connections wait in the socket's
accept queue. The old process keeps serving until the new one has loaded the
app; then the old one stops accepting (its in-flight requests finish; idle
and never-used connections close at once) and says so, and only then does
the new one start accepting: the two never accept side by side (unless the
old one fails to say so within STOP_WAIT), so once a client has seen the new
code, connections it opens afterwards never reach the old. A new process that
cannot start (a syntax error, an import error) reports one line and the old
process keeps serving; the next save tries again.

Changes are watched with watchfiles when it is installed
(``pip install 'fastbase-server[reload]'``), else by polling modification times;
``FASTBASE_RELOAD_POLLING=1`` forces polling (network file systems, tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

from .config import RELOAD_EXCLUDES, RELOAD_INCLUDES, Config
from .logs import describe_exit, error_log

__all__ = [
    "RELOAD_INCLUDES",
    "RELOAD_EXCLUDES",
    "FileFilter",
    "PollingWatcher",
    "Reloader",
    "reloader_child_sockets",
    "serve_reloader_child",
]

#: Directories never descended into, whatever the patterns say.
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})
#: The polling watcher looks this often (seconds).
POLL_INTERVAL = 0.25
#: The reloader tells its server process which inherited descriptors are the
#: listening sockets, and where to report that it is serving.
ENV_FDS = "FASTBASE_RELOADER_FDS"
ENV_READY_FD = "FASTBASE_RELOADER_READY_FD"
ENV_GO_FD = "FASTBASE_RELOADER_GO_FD"
ENV_PARENT = "FASTBASE_RELOADER_PID"
#: What a server process reports on its ready pipe: the app is loaded and the
#: listeners made (it accepts once the reloader writes to its go pipe), and,
#: when it shuts down, that it accepts no more. Anything else on the pipe is
#: the one-line reason it could not start.
READY = b"fastbase:ready\n"
STOPPED = b"fastbase:stopped\n"
#: How long the reloader waits for an old process to stop accepting before
#: the new one starts anyway (an old one whose loop is stuck in the app).
STOP_WAIT = 5.0
ENV_FORCE_POLLING = "FASTBASE_RELOAD_POLLING"


class FileFilter:
    """Which paths under the watched directories count as source.

    A pattern matches a file's name, or its path relative to the watched
    directory (``templates/*.html``). A file is watched when an include
    pattern matches it and no exclude pattern matches it or one of its parent
    directories. The user's patterns are added to the defaults; including a
    pattern that is a default exclude takes it off the exclude list."""

    def __init__(
        self,
        dirs: Iterable[str],
        includes: Optional[Iterable[str]] = None,
        excludes: Optional[Iterable[str]] = None,
    ) -> None:
        self.dirs = [Path(d).resolve() for d in dirs]
        extra = list(includes or ())
        self.includes = list(dict.fromkeys([*RELOAD_INCLUDES, *extra]))
        self.excludes = [p for p in dict.fromkeys([*RELOAD_EXCLUDES, *(excludes or ())]) if p not in extra]

    def _root(self, path: Path) -> Optional[Path]:
        for root in self.dirs:
            if path == root or root in path.parents:
                return root
        return None

    def skip_dir(self, name: str) -> bool:
        return name in _SKIP_DIRS or any(fnmatch.fnmatchcase(name, p) for p in self.excludes)

    def __call__(self, path: str) -> bool:
        file = Path(path)
        root = self._root(file) or file.parent
        relative = file.relative_to(root) if root in file.parents else Path(file.name)
        rel = relative.as_posix()
        for part in relative.parts[:-1]:
            if self.skip_dir(part):
                return False
        name = file.name
        if any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p) for p in self.excludes):
            return False
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p) for p in self.includes)


class PollingWatcher:
    """Watches by comparing modification times and sizes every interval."""

    name = "polling"

    def __init__(self, file_filter: FileFilter, interval: float = POLL_INTERVAL) -> None:
        self.filter = file_filter
        self.interval = interval
        self.snapshot = self.scan()

    def scan(self) -> Dict[str, Tuple[int, int]]:
        found: Dict[str, Tuple[int, int]] = {}
        for root in self.filter.dirs:
            for folder, subdirs, files in os.walk(root):
                subdirs[:] = [d for d in subdirs if not self.filter.skip_dir(d)]
                for name in files:
                    path = os.path.join(folder, name)
                    if not self.filter(path):
                        continue
                    try:
                        st = os.stat(path)
                    except OSError:  # removed while walking
                        continue
                    found[path] = (st.st_mtime_ns, st.st_size)
        return found

    def changes(self, stop: threading.Event) -> Set[str]:
        """Block until watched files change (the set of their paths) or
        ``stop`` is set (an empty set)."""
        while not stop.wait(self.interval):
            current = self.scan()
            if current != self.snapshot:
                old, self.snapshot = self.snapshot, current
                return {p for p in old.keys() | current.keys() if old.get(p) != current.get(p)}
        return set()


class WatchfilesWatcher:
    """Watches through watchfiles (inotify, FSEvents, ReadDirectoryChangesW)."""

    name = "watchfiles"

    def __init__(self, file_filter: FileFilter) -> None:
        import watchfiles

        self.filter = file_filter
        self._watchfiles = watchfiles
        self._iterator: Optional[Iterable] = None
        self._stop = threading.Event()

    def changes(self, stop: threading.Event) -> Set[str]:
        if self._iterator is None:
            self._stop = stop
            self._iterator = iter(
                self._watchfiles.watch(
                    *self.filter.dirs,
                    watch_filter=lambda change, path: self.filter(path),
                    stop_event=stop,
                    debounce=50,
                    step=20,
                    rust_timeout=500,
                    yield_on_timeout=True,
                    raise_interrupt=False,
                )
            )
        for batch in self._iterator:
            if stop.is_set():
                return set()
            if batch:
                return {path for _, path in batch}
        return set()


def make_watcher(config: Config) -> "PollingWatcher | WatchfilesWatcher":
    file_filter = FileFilter(config.reload_dirs or [os.getcwd()], config.reload_includes, config.reload_excludes)
    if os.environ.get(ENV_FORCE_POLLING) != "1":
        try:
            return WatchfilesWatcher(file_filter)
        except ImportError:
            pass
    return PollingWatcher(file_filter)


class _Child:
    """A server process, the read end of its report pipe and the write end
    of its go pipe."""

    def __init__(self, proc: subprocess.Popen, reports: int, go: int) -> None:
        self.proc = proc
        self.reports = reports
        self.go = go
        self.received = b""

    def read_until(self, token: bytes, timeout: float, stopping: Optional[threading.Event] = None) -> bool:
        """Read its reports until ``token`` (True) or the end of the pipe,
        the process's exit, the timeout, or ``stopping`` being set (False).
        (A process that exits while a child of its own holds the pipe open
        does not end it.)"""
        deadline = time.monotonic() + timeout
        while token not in self.received:
            if self.reports < 0 or (stopping is not None and stopping.is_set()):
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            exited = self.proc.poll() is not None
            readable, _, _ = select.select([self.reports], [], [], 0 if exited else min(remaining, 0.2))
            if readable:
                data = os.read(self.reports, 65536)
                if not data:
                    self._close_reports()
                    return False
                self.received += data
            elif exited:
                self._close_reports()
                return False
        return True

    def stop_now(self, timeout: float = 5.0) -> None:
        """Terminate it (then kill it after ``timeout``) and reap it, before
        closing its pipes: one that has not been told to go never accepts."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.reap(timeout)
        self.close()

    def reap(self, timeout: float) -> None:
        """Wait for it to exit; kill it after ``timeout`` seconds."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def start_accepting(self) -> None:
        if self.go >= 0:
            with contextlib.suppress(OSError):
                os.write(self.go, b"go")
            os.close(self.go)
            self.go = -1

    def _close_reports(self) -> None:
        if self.reports >= 0:
            os.close(self.reports)
            self.reports = -1

    def close(self) -> None:
        self._close_reports()
        if self.go >= 0:
            os.close(self.go)
            self.go = -1


class Reloader:
    """The ``--reload`` parent: holds the sockets, watches, restarts."""

    def __init__(self, config: Config, argv: List[str]) -> None:
        self.config = config
        self.argv = list(argv)
        self.sockets: List[socket.socket] = []
        self.current: Optional[_Child] = None
        self.retiring: List[_Child] = []
        # The process _start is waiting for, if any.
        self.starting: Optional[_Child] = None
        self.stopping = threading.Event()
        self.changed: "queue.Queue[Set[str]]" = queue.Queue()
        self._reported_exit = False

    def run(self) -> int:
        from . import logs
        from .server import StartupError
        from .sockets import BindError, bind_sockets

        config = self.config
        logs.configure(config.log_level)
        try:
            self.sockets = bind_sockets(config)
        except BindError as exc:
            raise StartupError(str(exc)) from None
        watcher = make_watcher(config)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        thread = threading.Thread(target=self._watch, args=(watcher,), name="fastbase-reload-watch", daemon=True)
        thread.start()
        dirs = ", ".join(str(d) for d in watcher.filter.dirs)
        error_log.info("Reloader %d watching %s (%s) for %s", os.getpid(), dirs, watcher.name, " ".join(watcher.filter.includes))
        try:
            self.current = self._start(first=True)
            if self.current is not None:
                self.current.start_accepting()
            while not self.stopping.is_set():
                self._reap()
                try:
                    paths = self.changed.get(timeout=0.2)
                except queue.Empty:
                    continue
                while not self.changed.empty():
                    paths |= self.changed.get_nowait()
                if self.stopping.is_set():
                    break
                error_log.info("Changes in %s; restarting", _describe(paths))
                _forget_bytecode(paths)
                fresh = self._start(first=self.current is None or self.current.proc.poll() is not None)
                if fresh is not None:
                    # The old process stops accepting first: the two never
                    # accept side by side (connections wait in the queue).
                    if self.current is not None:
                        self._retire(self.current)
                    fresh.start_accepting()
                    self.current = fresh
            return 0
        finally:
            self.stopping.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.current is not None:
                self._retire(self.current, before_another=False)
            self._wait_retiring()
            for sock in self.sockets:
                sock.close()
            if config.uds:
                with contextlib.suppress(OSError):
                    os.unlink(config.uds)
            thread.join(2)

    def _on_signal(self, sig: int, frame: object) -> None:
        if self.stopping.is_set() and sig == signal.SIGINT:
            for child in [self.current, self.starting, *self.retiring]:  # a second Ctrl+C: now
                if child is not None and child.proc.poll() is None:
                    child.proc.kill()
        self.stopping.set()

    def _watch(self, watcher: "PollingWatcher | WatchfilesWatcher") -> None:
        while not self.stopping.is_set():
            paths = watcher.changes(self.stopping)
            if paths:
                self.changed.put(paths)

    def _start(self, first: bool) -> Optional[_Child]:
        """Start a server process and wait until it has loaded the app and is
        ready to accept (returned; it accepts after ``start_accepting``) or
        fails (None, after one line saying why)."""
        read_fd, write_fd = os.pipe()
        go_read, go_write = os.pipe()
        fds = [sock.fileno() for sock in self.sockets]
        env = dict(os.environ)
        env[ENV_FDS] = ",".join(map(str, fds))
        env[ENV_READY_FD] = str(write_fd)
        env[ENV_GO_FD] = str(go_read)
        env[ENV_PARENT] = str(os.getpid())
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "fastbase", *self.argv], pass_fds=[*fds, write_fd, go_read], env=env)
        except BaseException:
            os.close(read_fd)
            os.close(go_write)
            raise
        finally:
            os.close(write_fd)
            os.close(go_read)
        self._reported_exit = False
        child = self.starting = _Child(proc, read_fd, go_write)
        try:
            while not child.read_until(READY, 3600.0, self.stopping):
                if self.stopping.is_set():
                    child.stop_now()
                    return None
                if child.reports < 0:
                    break  # it exited, or closed the pipe: it could not start
            else:
                return child
        finally:
            self.starting = None
        child.stop_now()
        code = proc.wait()
        reason = child.received.decode("utf-8", "replace").strip() or f"the server process exited ({describe_exit(code)})"
        if first:
            error_log.error("Cannot start: %s; waiting for a change to try again", reason)
        else:
            error_log.error("Reload failed: %s; the previous code keeps serving until the next change", reason)
        return None

    def _retire(self, child: _Child, before_another: bool = True) -> None:
        """Stop ``child`` gracefully; return (when another process is to
        start accepting after it) once it accepts no more, is gone, or
        STOP_WAIT has passed, while it finishes what it has."""
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            if before_another:
                child.read_until(STOPPED, STOP_WAIT)
            self.retiring.append(child)
        child.close()

    def _reap(self) -> None:
        self.retiring = [c for c in self.retiring if c.proc.poll() is None]
        child = self.current
        if child is not None and not self._reported_exit and child.proc.poll() is not None:
            self._reported_exit = True
            error_log.error("The server process exited (%s); waiting for a change to restart it", describe_exit(child.proc.returncode))

    def _wait_retiring(self) -> None:
        deadline = time.monotonic() + self.config.timeout_graceful_shutdown + 5
        for child in self.retiring:
            child.reap(max(0.0, deadline - time.monotonic()))
        self.retiring = []


def _forget_bytecode(paths: Set[str]) -> None:
    """Remove the cached bytecode of changed modules. A .pyc is trusted when
    its source's size and mtime in whole seconds match: an edit in the same
    second that keeps the size (a digit changed) would otherwise import the
    old code."""
    import importlib.util

    for path in paths:
        if path.endswith(".py"):
            with contextlib.suppress(OSError, ValueError, NotImplementedError):
                os.unlink(importlib.util.cache_from_source(path))


def _describe(paths: Set[str]) -> str:
    names = sorted(os.path.relpath(p) for p in paths)
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


# -- the server process -------------------------------------------------------


def reloader_child_sockets() -> Optional[List[socket.socket]]:
    """The listening sockets inherited from a --reload parent, or None when
    this process is not one of its server processes."""
    fds = os.environ.pop(ENV_FDS, None)
    if fds is None:
        return None
    sockets = []
    for fd in fds.split(","):
        sock = socket.socket(fileno=int(fd))
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def serve_reloader_child(config: Config, sockets: List[socket.socket]) -> int:
    """Serve on the inherited sockets: report READY to the parent once the
    app is loaded, start accepting when the parent says so, and report
    STOPPED once shutting down has stopped the accepting; or report the
    one-line reason it could not start."""
    from .asgi import LifespanError
    from .config import ConfigError
    from .importer import AppLoadError
    from .server import Server, StartupError

    ready_fd = int(os.environ.pop(ENV_READY_FD, "-1"))
    go_fd = int(os.environ.pop(ENV_GO_FD, "-1"))
    parent = int(os.environ.pop(ENV_PARENT, "0"))
    server = Server(config)

    def report(message: bytes, last: bool = True) -> None:
        nonlocal ready_fd
        if ready_fd < 0:
            return
        with contextlib.suppress(OSError):
            os.write(ready_fd, message)
        if last:
            os.close(ready_fd)
            ready_fd = -1

    async def before_serving() -> bool:
        nonlocal go_fd
        if go_fd < 0:
            report(READY, last=False)
            return True
        # The parent writes once the previous process accepts no more; the
        # pipe's end without a word means it is stopping or gone: then this
        # process stops without having accepted anything.
        loop = asyncio.get_running_loop()
        go = loop.create_future()

        def readable() -> None:
            if not go.done():
                go.set_result(None)

        loop.add_reader(go_fd, readable)
        # (The server's signal handlers are in place: a signal meanwhile
        # cancels this wait and the process stops cleanly.)
        report(READY, last=False)
        try:
            await go
            try:
                word = os.read(go_fd, 16)
            except OSError:
                word = b""
        finally:
            loop.remove_reader(go_fd)
            os.close(go_fd)
            go_fd = -1
        return bool(word)

    def heartbeat() -> None:
        # A reloader that died (kill -9) must not leave a server behind.
        if parent and os.getppid() != parent:
            error_log.warning("The reloader is gone; stopping")
            server.stop()

    server.before_serving = before_serving
    server.on_stopped_accepting = lambda: report(STOPPED)
    server.heartbeat = heartbeat
    try:
        server.run(sockets=sockets)
    except (AppLoadError, StartupError, ConfigError, LifespanError) as exc:
        report(str(exc).encode("utf-8", "replace"))
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        report(b"")
    return 0
