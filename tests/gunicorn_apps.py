"""Apps for the gunicorn worker tests; each answers with its worker's pid.

``/hold?PATH`` announces itself on stderr, then waits until PATH exists, so
a test can act while a request is in flight without guessing with a sleep;
``/block`` blocks the event loop itself (run with ``--threads 0``).
"""

import asyncio
import json
import os
import sys
import threading
import time

HOLD_LIMIT = 30.0


def _say(what):
    # One write per line: the workers share stderr, and print() writes the
    # newline separately, so another process's line could land in between.
    sys.stderr.write(f"app: {what} {os.getpid()}\n")
    sys.stderr.flush()


def wsgi(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hold":
        _say("holding")
        deadline = time.monotonic() + HOLD_LIMIT
        while not os.path.exists(environ["QUERY_STRING"]) and time.monotonic() < deadline:
            threading.Event().wait(0.01)
    elif path == "/block":
        _say("blocking")
        time.sleep(3600)
    body = json.dumps(
        {
            "pid": os.getpid(),
            "client": environ["REMOTE_ADDR"],
            "scheme": environ["wsgi.url_scheme"],
            "multiprocess": environ["wsgi.multiprocess"],
            "multithread": environ["wsgi.multithread"],
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["booted_by"] = os.getpid()
                _say("lifespan startup")
                await send({"type": "lifespan.startup.complete"})
            else:
                _say("lifespan shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/hold":
        _say("holding")
        deadline = time.monotonic() + HOLD_LIMIT
        while not os.path.exists(scope["query_string"].decode()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    body = json.dumps({"pid": os.getpid(), "client": scope["client"][0], "booted_by": scope["state"].get("booted_by")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def asgi_failing_startup(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})
