"""Dev restarts: stock ``manage.py runserver`` vs runserver through fastbase.

A browser keeps connections it opened in advance and never uses (Chromium
preconnects); a server that waits for those before exiting delays the
autoreloader's restart. Each round: hold ``--idle`` never-used connections
open (connect, send nothing), edit a view, and poll with fresh connections
until the new text is served. Two times per round:

- touch: from the edit to the first response with the new text (includes the
  autoreloader noticing the change: StatReloader looks once a second);
- reload: from the child's "changed, reloading" line to that response (the
  server's own part: stop, new process, import, bind, serve).

    python bench/devrestart_bench.py --rounds 8 --idle 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent / "tests" / "djangoproject"
VIEWS_LINE = 'GREETING = "Hello from Django"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, timeout: float = 2.0) -> bytes | None:
    """One GET / on a fresh connection; None when refused, reset or closed early."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
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


def server_env(kind: str) -> dict:
    """What the kind changes in the server's environment: fastbase stays in
    INSTALLED_APPS (benchsettings.py) for all but stock runserver."""
    return {"PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "benchsettings", "BENCH_FASTBASE": "0" if kind == "stock" else "1"}


class Runserver:
    def __init__(self, project: Path, port: int, kind: str) -> None:
        env = dict(os.environ, **server_env(kind))
        self.reloads: list = []
        self.proc = subprocess.Popen(
            server_command(kind, port),
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
                self.reloads.append(time.monotonic())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(kind: str, rounds: int, idle: int) -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
        (project / "benchsettings.py").write_text(
            "import os\nfrom mysite.settings import *  # noqa\n"
            "if os.environ['BENCH_FASTBASE'] != '1':\n    INSTALLED_APPS.remove('fastbase')\n"
            "DEBUG = True\n"
        )
        views = project / "mysite" / "views.py"
        source = views.read_text()
        assert VIEWS_LINE in source
        port = free_port()
        server = Runserver(project, port, kind)
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
                    reloads.append(t1 - server.reloads[seen])
                for s in held:
                    s.close()
        finally:
            server.stop()
    return touches, reloads


KINDS = [
    ("stock", "stock runserver"),
    ("fastbase", "runserver via fastbase"),
    ("reload", "fastbase --reload"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--idle", type=int, default=2, help="never-used connections held open per round")
    parser.add_argument("--out", help="write a Markdown report here")
    args = parser.parse_args()
    header = f"{args.rounds} rounds, {args.idle} never-used connections held open; seconds (median, min-max)"
    print(header)
    lines = []
    for kind, name in KINDS:
        touches, reloads = measure(kind, args.rounds, args.idle)
        line = f"| {name} | {statistics.median(touches):.3f} ({min(touches):.3f}-{max(touches):.3f}) |"
        if reloads:
            line += f" {statistics.median(reloads):.3f} ({min(reloads):.3f}-{max(reloads):.3f}) |"
        else:
            line += " - |"
        lines.append(line)
        print(line, flush=True)
    if args.out:
        table = ["| server | edit -> new response | restart line -> new response |", "|---|---:|---:|", *lines]
        Path(args.out).write_text(
            "# Dev restarts: edit to first response with the new code\n\n"
            f"Command: `python bench/devrestart_bench.py --rounds {args.rounds} --idle {args.idle}`; "
            f"Python {sys.version.split()[0]}; {header}.\n\n" + "\n".join(table) + "\n"
        )


if __name__ == "__main__":
    main()
