"""Dev restarts: stock ``manage.py runserver`` vs runserver through fastbase.

A browser keeps connections it opened in advance and never uses (Chromium
preconnects); a server that waits for those before exiting delays the
autoreloader's restart. Two modes, each timing from an edit of a watched file
to the first response with the new code, and from the reloading process's
"changed, reloading" line ("Changes in ...; restarting" for fastbase
--reload) to that response (the server's own part: stop, new process,
import, bind, serve):

- sockets (the default): each round holds ``--idle`` never-used connections
  open (connect, send nothing), edits a view of tests/djangoproject, and polls
  with fresh connections until the new text is served; one kind of server
  after the other.
- ``--browser chromium``: headless Chromium, driven over the DevTools
  protocol, loads the Django admin's login page (a copy of the project with
  the admin enabled), so it holds its own keep-alive and preconnected
  connections; the round edits the URLconf that sets the admin's title, and
  the browser navigates to the page again and again (connection refused while
  no process listens) until the title is the new one. The time of that
  response is the browser's own (Navigation Timing's responseEnd). The kinds'
  rounds are interleaved; each server process's exit is timed too (an atexit
  hook in the settings), so "restart line -> old process gone" shows what the
  old process waited for.

    python bench/devrestart_bench.py --rounds 8 --idle 2
    python bench/devrestart_bench.py --browser chromium --rounds 10 --server-cpus 1 --browser-cpus 0

Chromium: ``apt-get install chromium``; the DevTools client is websockets'.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

PROJECT = Path(__file__).resolve().parent.parent / "tests" / "djangoproject"
VIEWS_LINE = 'GREETING = "Hello from Django"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, timeout: float = 2.0, path: str = "/") -> bytes | None:
    """One GET on a fresh connection; None when refused, reset or closed early."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path.encode())
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return None
    raw = b"".join(chunks)
    if not raw.startswith(b"HTTP/1.1 200"):
        return None
    return raw.split(b"\r\n\r\n", 1)[1]


def server_command(kind: str, port: int) -> list:
    """The command line of a kind of server, run in the project's directory."""
    if kind == "reload":
        return [sys.executable, "-m", "fastbase", "--reload", "--host", "127.0.0.1", "--port", str(port), "mysite.wsgi:application"]
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]


def pinned(command: list, cpus: str | None) -> list:
    """The command under taskset -c CPUS (as it is without CPUS)."""
    return ["taskset", "-c", cpus, *command] if cpus else command


def server_env(kind: str) -> dict:
    """What the kind changes in the server's environment: fastbase stays in
    INSTALLED_APPS (benchsettings.py) for all but stock runserver."""
    return {"PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "benchsettings", "BENCH_FASTBASE": "0" if kind == "stock" else "1"}


def watch_exit(pid: int, entry: list, timeout: float = 30.0) -> None:
    """Set entry[2] to when process pid is gone (its interpreter finished and
    its parent, the autoreloader, reaped it); Linux's /proc only."""
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():
        return
    deadline = time.monotonic() + timeout
    while proc.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    if not proc.exists():
        entry[2] = time.time()


class Runserver:
    def __init__(self, project: Path, port: int, kind: str, cpus: str | None = None, log: Path | None = None) -> None:
        env = dict(os.environ, **server_env(kind))
        if log is not None:
            env["BENCH_SERVER_INFO"] = "1"
        self.port = port
        #: (time.monotonic(), time.time()) of each reload line.
        self.reloads: list = []
        #: [reload lines read before it, time.time() at its atexit hook, time
        #: it was gone] of each process exit (browser mode's EXIT_PROBE).
        self.exits: list = []
        self.log = open(log, "w") if log is not None else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            pinned(server_command(kind, port), cpus),
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "changed, reloading" in line or "; restarting" in line:
                self.reloads.append((time.monotonic(), time.time()))
            elif line.startswith("bench: process ") and " exiting at " in line:
                entry = [len(self.reloads), float(line.rsplit(" ", 1)[1]), None]
                self.exits.append(entry)
                pid = int(line.split()[2])
                threading.Thread(target=watch_exit, args=(pid, entry), daemon=True).start()
            if self.log is not None:
                self.log.write(f"{time.time():.3f} {line}")
                self.log.flush()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(5)
        if self.log is not None:
            self.log.close()


def prepare_project(tmp: str, admin: bool = False) -> Path:
    """A copy of tests/djangoproject with benchsettings.py (fastbase in
    INSTALLED_APPS unless BENCH_FASTBASE=0). With admin, the Django admin is
    served at /admin/ (its apps, middleware, templates, a migrated SQLite
    file) from benchurls.py, whose TITLE_LINE the browser rounds edit."""
    project = Path(tmp) / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    settings = BENCHSETTINGS
    if admin:
        settings += ADMIN_SETTINGS + EXIT_PROBE
        (project / "benchurls.py").write_text(BENCHURLS)
    (project / "benchsettings.py").write_text(settings)
    if admin:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            cwd=project,
            env=dict(os.environ, **server_env("stock")),
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise SystemExit(f"migrate failed:\n{done.stderr}")
    return project


BENCHSETTINGS = (
    "import os\nfrom mysite.settings import *  # noqa\n"
    "if os.environ['BENCH_FASTBASE'] != '1':\n    INSTALLED_APPS.remove('fastbase')\n"
    "DEBUG = True\n"
)
ADMIN_SETTINGS = """
INSTALLED_APPS += ["django.contrib.admin", "django.contrib.sessions", "django.contrib.messages"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "benchurls"
DATABASES["default"]["NAME"] = BASE_DIR / "bench.sqlite3"
"""
# When each server process ends (an atexit hook registered before the
# server's own, so it runs after them), and, with BENCH_SERVER_INFO=1,
# fastbase's info lines ("Shutting down: N connection(s) open, ...").
EXIT_PROBE = """
import atexit
import sys
import time

atexit.register(lambda: print(f"bench: process {os.getpid()} exiting at {time.time():.3f}", file=sys.stderr, flush=True))
if os.environ.get("BENCH_SERVER_INFO") == "1":
    import fastbase.logs

    _configure = fastbase.logs.configure
    fastbase.logs.configure = lambda level="info", *rest: _configure("info", *rest)
"""
TITLE_LINE = 'TITLE = "Django site admin"'
BENCHURLS = f"""from django.contrib import admin
from django.urls import path

from mysite.urls import urlpatterns as mysite_urlpatterns

# Edited by bench/devrestart_bench.py --browser: the admin's page titles change.
{TITLE_LINE}
admin.site.site_title = TITLE
urlpatterns = [path("admin/", admin.site.urls), *mysite_urlpatterns]
"""


def measure(kind: str, rounds: int, idle: int, cpus: str | None = None) -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        project = prepare_project(tmp)
        views = project / "mysite" / "views.py"
        source = views.read_text()
        assert VIEWS_LINE in source
        port = free_port()
        server = Runserver(project, port, kind, cpus)
        touches, reloads = [], []
        try:
            deadline = time.monotonic() + 30
            while get(port) is None:
                if time.monotonic() > deadline:
                    raise SystemExit("runserver did not start")
                time.sleep(0.02)
            for n in range(rounds):
                # Let the autoreloader take its first snapshot of the files.
                time.sleep(1.5)
                held = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
                marker = f"round {n} {time.time()}"
                seen = len(server.reloads)
                views.write_text(source.replace(VIEWS_LINE, f'GREETING = "{marker}"'))
                t0 = time.monotonic()
                deadline = t0 + 30
                while get(port) != marker.encode():
                    if time.monotonic() > deadline:
                        raise SystemExit(f"round {n}: the new text was never served")
                    time.sleep(0.01)
                t1 = time.monotonic()
                touches.append(t1 - t0)
                if len(server.reloads) > seen:
                    reloads.append(t1 - server.reloads[seen][0])
                for s in held:
                    s.close()
        finally:
            server.stop()
    return touches, reloads


# -- --browser chromium: a real browser over the DevTools protocol ------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Navigation Timing of the page shown: its title, and when its response
#: ended (epoch milliseconds, the clock time.time() reads).
PAGE_STATE = (
    "(() => { const nav = performance.getEntriesByType('navigation')[0];"
    " return {title: document.title, end: nav ? performance.timeOrigin + nav.responseEnd : null}; })()"
)


class DevToolsError(Exception):
    pass


class DevTools:
    """A DevTools protocol session on one page target: call() sends a
    command and returns its result; events that arrive meanwhile are kept
    for wait_event()."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.last_id = 0
        self.events: list = []

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict:
        self.last_id += 1
        msg_id = self.last_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == msg_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_event(self, match: Callable[[dict], bool], timeout: float = 30.0) -> dict:
        """The first event (kept or arriving) for which match() is true;
        the events before it are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            while self.events:
                event = self.events.pop(0)
                if match(event):
                    return event
            message = self._receive(deadline, "an event")
            if "method" in message:
                self.events.append(message)

    def _receive(self, deadline: float, what: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DevToolsError(f"timed out waiting for {what}")
        try:
            return json.loads(self.ws.recv(timeout=remaining))
        except TimeoutError:
            raise DevToolsError(f"timed out waiting for {what}") from None


def is_load_of(loader_id: str) -> Callable[[dict], bool]:
    def match(event: dict) -> bool:
        params = event.get("params", {})
        return event.get("method") == "Page.lifecycleEvent" and params.get("name") == "load" and params.get("loaderId") == loader_id

    return match


class Chromium:
    """Headless Chromium, its own profile in a fresh directory, driven over
    DevTools (its port read from the profile's DevToolsActivePort)."""

    def __init__(self, binary: str, profile: str, cpus: str | None = None) -> None:
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
        self.proc = subprocess.Popen(
            pinned(command, cpus), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        active = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not active.exists() or len(active.read_text().split()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{binary} did not start (is it installed? apt-get install chromium)")
            time.sleep(0.05)
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        page = next(t for t in targets if t.get("type") == "page")
        from websockets.sync.client import connect

        self.session = contextlib.ExitStack()
        self.ws = self.session.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        self.tab = DevTools(self.ws)
        self.tab.call("Page.enable")
        self.tab.call("Page.setLifecycleEventsEnabled", enabled=True)

    def load(self, url: str) -> tuple:
        """Navigate and wait for the load event: (None, title, response end
        in epoch seconds), or (the network error, None, None)."""
        tab = self.tab
        tab.events.clear()
        result = tab.call("Page.navigate", url=url)
        if result.get("errorText"):
            return result["errorText"], None, None
        tab.wait_event(is_load_of(result["loaderId"]))
        state = tab.call("Runtime.evaluate", expression=PAGE_STATE, returnByValue=True)["result"]["value"]
        end = state["end"] / 1000 if state.get("end") else None
        return None, state["title"], end

    def stop(self) -> None:
        session = getattr(self, "session", None)
        if session is not None:
            session.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclasses.dataclass
class BrowserRound:
    kind: str
    touch: float  # edit -> the new process's page (its response's end)
    reload: float | None  # restart line -> the same
    gone: float | None  # restart line -> the old process's exit
    loaded: float  # edit -> that page's load event (subresources included)
    attempts: int  # navigations it took
    errors: dict  # network error -> how many navigations failed with it
    old: int  # navigations answered by the old process


def browser_round(browser: Chromium, server: Runserver, project: Path, kind: str, n: int) -> BrowserRound:
    port = server.port
    url = f"http://127.0.0.1:{port}/admin/login/"
    urls = project / "benchurls.py"
    # The page, its stylesheets and scripts: the browser now holds keep-alive
    # connections (and maybe preconnected ones) to the server.
    error, title, _ = browser.load(url)
    if error:
        raise SystemExit(f"{kind}: {url}: {error}")
    # Let the autoreloader take its snapshot of the files (StatReloader looks
    # once a second) and the browser's connections sit idle.
    time.sleep(1.5)
    marker = f"round {n} {kind} {time.time():.3f}"
    seen = len(server.reloads)
    text = BENCHURLS.replace(TITLE_LINE, f'TITLE = "{marker}"')
    t0 = time.time()
    urls.write_text(text)
    attempts, old, errors = 0, 0, {}
    while True:
        if time.time() - t0 > 60:
            raise SystemExit(f"{kind} round {n}: the new page was never served (last: {error or title!r}, wanted {marker!r})")
        attempts += 1
        error, title, end = browser.load(url)
        if error:
            errors[error] = errors.get(error, 0) + 1
        elif marker in title:
            break
        else:
            old += 1
        time.sleep(0.02)
    loaded = time.time()
    end = end or loaded
    reload = gone = None
    if len(server.reloads) > seen:
        line = server.reloads[seen][1]
        reload = end - line
        gone = old_process_gone(server.exits, seen, line)
    return BrowserRound(kind, end - t0, reload, gone, loaded - t0, attempts, errors, old)


def old_process_gone(exits: list, seen: int, line: float) -> float | None:
    """Seconds from reload line number seen (read at time line) to the exit
    of the process that wrote it, the first exit read after that line: when
    it was gone, else when its atexit hook ran. The line's time is when this
    script read it: an exit at once may come out a millisecond early (0)."""
    for after, atexit, gone in exits:
        if after > seen:
            return max(0.0, (gone if gone is not None else atexit) - line)
    return None


def measure_browser(kinds: list, rounds: int, binary: str, server_cpus: str | None, browser_cpus: str | None, log_dir: str | None) -> list:
    """Rounds of every kind, interleaved (the first kind rotates), one
    browser and one server per kind for the whole run."""
    results = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        servers, projects = {}, {}
        for kind in kinds:
            projects[kind] = prepare_project(tempfile.mkdtemp(dir=tmp), admin=True)
            log = Path(log_dir) / f"devrestart-{kind}.log" if log_dir else None
            servers[kind] = server = Runserver(projects[kind], free_port(), kind, server_cpus, log)
            stack.callback(server.stop)
        for kind, server in servers.items():
            deadline = time.monotonic() + 60
            while get(server.port, path="/admin/login/") is None:
                if server.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{kind} did not start")
                time.sleep(0.05)
        browser = Chromium(binary, tempfile.mkdtemp(dir=tmp), browser_cpus)
        stack.callback(browser.stop)
        for n in range(rounds):
            for i in range(len(kinds)):
                kind = kinds[(n + i) % len(kinds)]
                result = browser_round(browser, servers[kind], projects[kind], kind, n)
                print(
                    f"  round {n} {kind}: {result.touch:.3f} s, reload line {fmt(result.reload)} s, {result.attempts} navigations",
                    flush=True,
                )
                results.append(result)
    return results


# -- reports ---------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary(values: list) -> str:
    """median (min-max), or "-" with nothing measured."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def browser_rows(results: list, kinds: list) -> list:
    rows = []
    for kind in kinds:
        mine = [r for r in results if r.kind == kind]
        errors: dict = {}
        for r in mine:
            for error, count in r.errors.items():
                errors[error] = errors.get(error, 0) + count
        seen = ", ".join(f"{error} {count}" for error, count in sorted(errors.items())) or "none"
        rows.append(
            f"| {NAMES[kind]} | {summary([r.touch for r in mine])} | {summary([r.reload for r in mine])} | "
            f"{summary([r.gone for r in mine])} | {summary([r.loaded for r in mine])} | {statistics.median(r.attempts for r in mine):g} | {seen} |"
        )
    return rows


BROWSER_TABLE = [
    "| server | edit -> new page | restart line -> new page | restart line -> old process gone | edit -> page loaded "
    "| navigations (median) | failed navigations (all rounds) |",
    "|---|---:|---:|---:|---:|---:|---|",
]

KINDS = [
    ("stock", "stock runserver"),
    ("fastbase", "runserver via fastbase"),
    ("reload", "fastbase --reload"),
]
NAMES = dict(KINDS)


def parse_kinds(text: str) -> list:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in NAMES]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"kinds are {', '.join(NAMES)}; got {text!r}")
    return kinds


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--idle", type=int, default=2, help="never-used connections held open per round (socket mode)")
    parser.add_argument(
        "--browser", choices=["chromium"], help="load the Django admin in this headless browser instead of using raw sockets"
    )
    parser.add_argument("--chromium", default="chromium", help="the Chromium binary (default: chromium)")
    parser.add_argument(
        "--kinds", type=parse_kinds, help="servers to compare (default: stock,fastbase,reload; with --browser stock,fastbase)"
    )
    parser.add_argument("--server-cpus", help="run the servers under taskset -c CPUS")
    parser.add_argument("--browser-cpus", help="run the browser under taskset -c CPUS")
    parser.add_argument("--server-logs", help="with --browser: write each server's stderr here, timestamped")
    parser.add_argument("--out", help="write a Markdown report here")
    args = parser.parse_args(argv)
    if args.browser:
        browser_main(args)
        return
    kinds = args.kinds or [kind for kind, _ in KINDS]
    header = f"{args.rounds} rounds, {args.idle} never-used connections held open; seconds (median, min-max)"
    print(header)
    lines = []
    for kind in kinds:
        touches, reloads = measure(kind, args.rounds, args.idle, args.server_cpus)
        line = f"| {NAMES[kind]} | {summary(touches)} | {summary(reloads)} |"
        lines.append(line)
        print(line, flush=True)
    if args.out:
        table = ["| server | edit -> new response | restart line -> new response |", "|---|---:|---:|", *lines]
        Path(args.out).write_text(
            "# Dev restarts: edit to first response with the new code\n\n"
            f"Command: `{' '.join(['python bench/devrestart_bench.py', *sys.argv[1:]])}`; "
            f"Python {sys.version.split()[0]}; {header}.\n\n" + "\n".join(table) + "\n"
        )


def browser_main(args: argparse.Namespace) -> None:
    kinds = args.kinds or ["stock", "fastbase"]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    version = subprocess.run([args.chromium, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{version}; {args.rounds} rounds of {', '.join(kinds)}; load average {load}")
    results = measure_browser(kinds, args.rounds, args.chromium, args.server_cpus, args.browser_cpus, args.server_logs)
    rows = browser_rows(results, kinds)
    print("\n".join([*BROWSER_TABLE, *rows]))
    if args.out:
        import django

        import fastbase

        end_load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        command = " ".join(["python bench/devrestart_bench.py", *sys.argv[1:]])
        raw = [
            "| round | server | edit -> new page | restart line -> new page | restart line -> old process gone | navigations | failed | old page |",
            "|---:|---|---:|---:|---:|---:|---|---:|",
        ]
        for i, r in enumerate(results):
            failed = ", ".join(f"{e} {c}" for e, c in sorted(r.errors.items())) or "-"
            raw.append(
                f"| {i // len(kinds)} | {r.kind} | {r.touch:.3f} | {fmt(r.reload)} | {fmt(r.gone)} | {r.attempts} | {failed} | {r.old} |"
            )
        Path(args.out).write_text(
            "# Dev restarts with headless Chromium: edit to the new process's page\n\n"
            f"Command: `{command}`; started {started}; load average {load} at the start, {end_load} at the end; "
            f"{version}; Python {sys.version.split()[0]}, Django {django.get_version()}, fastbase {fastbase.__version__}; "
            f"seconds, median (min-max) over {args.rounds} rounds per server, the servers' rounds interleaved.\n\n"
            + "\n".join([*BROWSER_TABLE, *rows])
            + "\n\nEvery round:\n\n"
            + "\n".join(raw)
            + "\n"
        )


if __name__ == "__main__":
    main()
