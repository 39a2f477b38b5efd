"""Apps for the --workers tests: each answers with its worker's pid."""

import os
import sys
import threading
import time


def _say(line: str) -> None:
    # One write per line: the workers share stderr, and print() writes the
    # newline separately, so another process's line could land in between.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def pid(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hang":
        # Blocks the event loop itself (run with --threads 0): the worker's
        # heartbeat stops and the supervisor must replace it.
        _say(f"app: hanging {os.getpid()}")
        time.sleep(3600)
    if path == "/slow":
        _say(f"app: slow {os.getpid()}")
        release = environ.get("QUERY_STRING", "")
        deadline = time.monotonic() + 30
        while not os.path.exists(release) and time.monotonic() < deadline:
            threading.Event().wait(0.02)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def broken(environ, start_response):  # pragma: no cover - never served
    raise AssertionError


raise_on_import = os.environ.get("WORKER_APPS_FAIL") == "1"
if raise_on_import:
    raise RuntimeError("the app refuses to start")
