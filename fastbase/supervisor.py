"""``--workers N``: a supervisor process and N forked workers.

The supervisor binds the sockets once (``SO_REUSEPORT`` set where the
platform has it) and every worker inherits them, so a connection waiting in
the accept queue is never lost when a worker goes away. On Linux the supervisor
also binds one more TCP socket per worker slot in the same ``SO_REUSEPORT``
group, and a small BPF program on the group sends each new connection to one
of those slot sockets at random: workers get even shares instead of racing
for one queue (one used to take ~75% of them). The supervisor keeps every
slot socket open, so what waits in a slot's queue when its worker stops,
dies or is killed is accepted by the worker that replaces it, never reset.
The shared socket gets new connections only if a slot socket is missing.
``FASTBASE_WORKER_REUSEPORT=0`` turns the slot sockets off.

The supervisor restarts a worker that dies, kills one whose event loop stops beating (``--timeout-worker``),
replaces workers one by one on SIGHUP, and on SIGTERM/SIGINT lets every
worker finish its requests (``--timeout-graceful-shutdown``).

Workers report liveness through a shared array of monotonic timestamps (the
clock is system-wide), written by a callback on their event loop: a loop
blocked by the app stops writing. Platforms without ``fork()`` run a single
process instead, with a warning.
"""

from __future__ import annotations

import ctypes
import multiprocessing.sharedctypes
import os
import random
import select
import signal
import socket
import sys
import time
from typing import Any, Dict, List, Optional

from . import logs
from .config import Config
from .logs import describe_exit, error_log
from .sockets import BindError, bind_sockets, reuseport_sibling, steer_reuseport_to_workers

#: A worker's exit status when it could not start (app import, bind, lifespan).
EXIT_BOOT_ERROR = 3
#: A crashing worker is restarted after this delay, doubled per quick crash.
RESTART_DELAY = 0.1
RESTART_DELAY_MAX = 10.0


class SupervisorError(Exception):
    """Workers could not be started; the message is one line."""


class _Child:
    """A forked worker process, as the supervisor tracks it."""

    __slots__ = ("pid", "slot", "beat", "started", "stopping", "stop_deadline")

    def __init__(self, pid: int, slot: int, beat: int) -> None:
        self.pid = pid
        self.slot = slot
        self.beat = beat
        self.started = time.monotonic()
        self.stopping = False
        self.stop_deadline = 0.0


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.workers: Dict[int, _Child] = {}
        self.sockets: List[socket.socket] = []
        self.beats: Optional[ctypes.Array] = None
        self._free_beats: List[int] = []
        self._signals: List[int] = []
        self._stopping = False
        self._restart_delay = RESTART_DELAY
        self._wake_r = self._wake_w = -1
        #: --metrics: the endpoint and the workers' shared counters.
        self.metrics: Any = None
        #: Per-slot SO_REUSEPORT sockets (Linux, TCP the supervisor bound
        #: itself: not --uds, --fd or systemd's), each served by the slot's worker.
        self.worker_sockets = False
        self.slot_sockets: Dict[int, List[socket.socket]] = {}

    # -- the supervisor ------------------------------------------------------

    def run(self) -> int:
        config = self.config
        logs.configure(config.log_level, config.log_config)
        if not hasattr(os, "fork"):
            error_log.warning("--workers needs fork(), which this platform lacks: serving with one process")
            from .server import Server

            Server(config).run()
            return 0
        inherited = config.fd is not None or bool(os.environ.get("LISTEN_FDS"))
        self.worker_sockets = not inherited and not config.uds and os.environ.get("FASTBASE_WORKER_REUSEPORT") != "0"
        try:
            self.sockets = bind_sockets(config, reuse_port=True)
        except BindError as exc:
            from .server import StartupError

            raise StartupError(str(exc)) from None
        if self.worker_sockets:
            self._bind_slot_sockets()
        # Twice the slots: during a rolling restart old and new workers overlap.
        slots = 2 * config.workers + 2
        self.beats = multiprocessing.sharedctypes.RawArray(ctypes.c_double, slots)
        self._free_beats = list(range(slots))
        if config.metrics:
            from .metrics import MetricsError, SupervisorMetrics

            try:
                self.metrics = SupervisorMetrics(config.metrics_host, config.metrics_port, slots, config.workers)
            except MetricsError as exc:
                from .server import StartupError

                raise StartupError(str(exc)) from None
            error_log.info("Metrics at %s", self.metrics.address)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        previous = self._install_signals()
        error_log.info("fastbase supervisor %d starting %d workers", os.getpid(), config.workers)
        try:
            for slot in range(config.workers):
                self._spawn(slot)
            return self._main_loop()
        finally:
            self._restore_signals(previous)
            for sock in [*self.sockets, *(s for group in self.slot_sockets.values() for s in group)]:
                sock.close()
            if config.uds:
                try:
                    os.unlink(config.uds)
                except OSError:
                    pass
            os.close(self._wake_r)
            os.close(self._wake_w)
            if self.metrics is not None:
                self.metrics.close()

    def _bind_slot_sockets(self) -> None:
        config = self.config
        try:
            for slot in range(config.workers):
                group = [sibling for sibling in (reuseport_sibling(sock, config) for sock in self.sockets) if sibling]
                if group:
                    self.slot_sockets[slot] = group
        except OSError as exc:
            error_log.warning("No SO_REUSEPORT socket per worker (%s): the workers share one socket", exc)
            for group in self.slot_sockets.values():
                for sock in group:
                    sock.close()
            self.slot_sockets.clear()
            return
        if self.slot_sockets:
            # The slot sockets joined the group after the shared one (index 0)
            # and stay open: indexes 1..workers are theirs for good.
            for sock in self.sockets:
                if sock.family in (socket.AF_INET, socket.AF_INET6) and not steer_reuseport_to_workers(sock, config.workers):
                    error_log.debug("SO_ATTACH_REUSEPORT_CBPF refused: the kernel's hash spreads connections")

    def _install_signals(self) -> dict:
        previous: dict = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            previous[sig] = signal.signal(sig, self._on_signal)
        previous["wakeup"] = signal.set_wakeup_fd(self._wake_w)
        return previous

    def _restore_signals(self, previous: dict) -> None:
        signal.set_wakeup_fd(previous.pop("wakeup"))
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: object) -> None:
        self._signals.append(sig)

    def _main_loop(self) -> int:
        config = self.config
        while True:
            if self.metrics is None:
                try:
                    select.select([self._wake_r], [], [], 0.5)
                except InterruptedError:
                    pass
            else:
                ready = self.metrics.wait([self._wake_r, *self.metrics.fds()], 0.5)
                self.metrics.handle(ready, sum(1 for w in self.workers.values() if not w.stopping))
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
            while self._signals:
                sig = self._signals.pop(0)
                if sig in (signal.SIGINT, signal.SIGTERM) and not self._stopping:
                    error_log.info("Shutting down: stopping %d workers gracefully", len(self.workers))
                    self._stopping = True
                    deadline = time.monotonic() + config.timeout_graceful_shutdown + 5
                    for worker in self.workers.values():
                        self._stop_worker(worker, deadline)
                elif sig == signal.SIGHUP and not self._stopping:
                    self._rolling_restart()
            failed = self._reap()
            if failed is not None:
                self._abort_all()
                raise SupervisorError(failed)
            if self._stopping and not self.workers:
                return 0
            self._check_workers()

    def _spawn(self, slot: int) -> None:
        assert self.beats is not None
        beat = self._free_beats.pop(0)
        self.beats[beat] = 0.0
        limit = 0
        if self.config.max_requests:
            limit = self.config.max_requests + random.randint(0, self.config.max_requests_jitter)
        sys.stdout.flush()
        sys.stderr.flush()
        # Read before fork(): a worker asking os.getppid() after it could get
        # pid 1 if the supervisor died first, and never notice it is orphaned.
        supervisor = os.getpid()
        if self.metrics is not None:
            self.metrics.before_fork(beat)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                own = self.slot_sockets.get(slot, [])
                for other, group in self.slot_sockets.items():
                    if other != slot:
                        for sock in group:
                            sock.close()
                code = _worker_main(self.config, [*self.sockets, *own], self.beats, beat, limit, (self._wake_r, self._wake_w), supervisor)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.workers[pid] = _Child(pid, slot, beat)
        error_log.info("Started worker %d", pid)

    def _stop_worker(self, worker: _Child, deadline: float) -> None:
        if not worker.stopping:
            worker.stopping = True
            worker.stop_deadline = deadline
            _kill(worker.pid, signal.SIGTERM)

    def _rolling_restart(self) -> None:
        """SIGHUP: each worker is replaced by a fresh one, which starts first."""
        error_log.info("Reloading: replacing %d workers", self.config.workers)
        deadline = time.monotonic() + self.config.timeout_graceful_shutdown + 5
        for worker in [w for w in self.workers.values() if not w.stopping]:
            self._spawn(worker.slot)
            self._stop_worker(worker, deadline)

    def _reap(self) -> Optional[str]:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self._free_beats.append(worker.beat)
            if self.metrics is not None:
                self.metrics.retire(worker.beat)
            code = os.waitstatus_to_exitcode(status)
            if worker.stopping or self._stopping:
                error_log.info("Worker %d stopped", pid)
                continue
            if code == EXIT_BOOT_ERROR:
                return "a worker could not start (its error is above)"
            lived = time.monotonic() - worker.started
            if code == 0:
                error_log.info("Worker %d finished (max requests); starting a new one", pid)
            else:
                error_log.error("Worker %d died (%s); starting a new one", pid, describe_exit(code))
            if code != 0 and lived < 1.0:
                time.sleep(self._restart_delay)  # a crash loop must not spin
                self._restart_delay = min(self._restart_delay * 2, RESTART_DELAY_MAX)
            elif lived > 10.0:
                self._restart_delay = RESTART_DELAY
            self._spawn(worker.slot)

    def _check_workers(self) -> None:
        assert self.beats is not None
        now = time.monotonic()
        timeout = self.config.timeout_worker
        for worker in list(self.workers.values()):
            if worker.stopping:
                if now > worker.stop_deadline:
                    error_log.warning("Worker %d did not stop in time; killing it", worker.pid)
                    _kill(worker.pid, signal.SIGKILL)
                    worker.stop_deadline = float("inf")
                continue
            beat = self.beats[worker.beat]
            last = beat if beat else worker.started
            if now - last > timeout:
                error_log.error(
                    "Worker %d %s for %.0f s; killing it",
                    worker.pid,
                    "has not started" if not beat else "is blocked (its event loop stopped)",
                    now - last,
                )
                # Marked stopping, so _reap does not replace it a second time.
                worker.stopping = True
                worker.stop_deadline = float("inf")
                _kill(worker.pid, signal.SIGKILL)
                self._spawn(worker.slot)

    def _abort_all(self) -> None:
        for worker in self.workers.values():
            _kill(worker.pid, signal.SIGKILL)
        for pid in list(self.workers):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.workers.clear()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _worker_main(
    config: Config,
    sockets: List[socket.socket],
    beats: ctypes.Array,
    beat: int,
    max_requests: int,
    supervisor_fds: tuple,
    parent: int,
) -> int:
    """Run one worker (in the forked child); returns its exit status."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    for fd in supervisor_fds:
        os.close(fd)
    from .asgi import LifespanError
    from .config import ConfigError
    from .importer import AppLoadError
    from .server import Server, StartupError

    server = Server(config)

    def heartbeat() -> None:
        beats[beat] = time.monotonic()
        if os.getppid() != parent:
            error_log.warning("Worker %d: the supervisor is gone; stopping", os.getpid())
            server.stop()

    server.heartbeat = heartbeat
    server.max_requests = max_requests
    server.heartbeat_interval = min(1.0, config.timeout_worker / 4)
    stats = os.environ.get(STATS_ENV)
    if stats:
        server.on_started = _count_for_bench
    try:
        server.run(sockets=sockets)
    except (AppLoadError, StartupError, ConfigError, LifespanError) as exc:
        from .cli import report_error

        report_error(exc, config.log_level)
        return EXIT_BOOT_ERROR
    except KeyboardInterrupt:
        return 0
    finally:
        if stats and server.state is not None:
            _write_bench_counts(server, stats)
    return 0


#: bench/workers_share.py only: a directory where each worker writes how many
#: connections and requests it served, when it exits.
STATS_ENV = "FASTBASE_BENCH_WORKER_STATS"


class _CountingSet(set):
    accepted = 0

    def add(self, item: object) -> None:
        self.accepted += 1
        super().add(item)


def _count_for_bench(server: object) -> None:
    state = server.state  # type: ignore[attr-defined]
    state.connections = _CountingSet(state.connections)
    if not state.request_limit:  # counting requests is on while a limit is set
        state.limit_requests(2**62, lambda: None)


def _write_bench_counts(server: object, directory: str) -> None:
    import json

    state = server.state  # type: ignore[attr-defined]
    counts = {
        "pid": os.getpid(),
        "connections": getattr(state.connections, "accepted", 0),
        "requests": state.total_requests,
    }
    with open(os.path.join(directory, f"worker-{os.getpid()}.json"), "w") as f:
        json.dump(counts, f)
