"""Apps for the --workers tests: each answers with its worker's pid."""

import os
import sys
import threading
import time


def pid(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hang":
        # Blocks the event loop itself (run with --threads 0): the worker's
        # heartbeat stops and the supervisor must replace it.
        print(f"app: hanging {os.getpid()}", file=sys.stderr, flush=True)
        time.sleep(3600)
    if path == "/slow":
        print(f"app: slow {os.getpid()}", file=sys.stderr, flush=True)
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
