"""Scenarios run against one Django ASGI handler, in a process of their own
(Django's settings are process-wide). ``python django_handler_scenarios.py
django|fastbase`` prints one JSON object: scenario name -> what was observed,
thread identities replaced by names ("loop", "T1", "T2", ...) so that two
handlers' runs compare with ``==``. tests/test_django_asgi_handler.py runs it
for both handlers and compares.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import socket
import sys
import tempfile
import threading
import time

import django
from django.conf import settings

DB = os.path.join(tempfile.mkdtemp(prefix="fastbase-handler-"), "db.sqlite3")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "__main__.Recorder",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "__main__.Inner",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
if os.environ.get("FASTBASE_SCENARIO_MIDDLEWARE") == "mixed":
    # Not all MiddlewareMixin: an async-only and a sync-only middleware split
    # the runs, so fastbase's general path (not the one-hop one) serves.
    MIDDLEWARE.insert(3, "__main__.async_only")
    MIDDLEWARE.insert(6, "__main__.sync_only")

settings.configure(
    DEBUG=False,
    SECRET_KEY="fastbase-tests-only",
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    MIDDLEWARE=MIDDLEWARE,
    ROOT_URLCONF="__main__",
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB, "CONN_MAX_AGE": 0}},
    FILE_UPLOAD_MAX_MEMORY_SIZE=1000,
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup(set_prefix=False)

from django.core.signals import got_request_exception, request_finished, request_started  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.deprecation import MiddlewareMixin  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

EVENTS: list[tuple[str, int]] = []
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")
LOCAL = threading.local()


def event(name: str) -> None:
    EVENTS.append((name, threading.get_ident()))


class Recorder(MiddlewareMixin):
    def process_request(self, request):
        event("Recorder.process_request")
        VAR.set("from process_request")
        if request.headers.get("x-boom") == "request":
            raise ValueError("boom in process_request")
        if request.headers.get("x-short") == "1":
            return HttpResponse("short", status=203)

    def process_view(self, request, view, args, kwargs):
        event("Recorder.process_view")

    def process_response(self, request, response):
        event("Recorder.process_response")
        response["X-Var"] = VAR.get()
        if request.headers.get("x-boom") == "response":
            raise ValueError("boom in process_response")
        return response


class Inner(MiddlewareMixin):
    def process_request(self, request):
        event("Inner.process_request")

    def process_exception(self, request, exception):
        event("Inner.process_exception")
        if str(exception) == "handled":
            return HttpResponse("handled by process_exception", status=409)

    def process_response(self, request, response):
        event("Inner.process_response")
        return response


from asgiref.sync import markcoroutinefunction  # noqa: E402


def async_only(get_response):
    async def middleware(request):
        event("async_only before")
        response = await get_response(request)
        event("async_only after")
        return response

    return markcoroutinefunction(middleware)


async_only.sync_capable = False
async_only.async_capable = True


def sync_only(get_response):
    def middleware(request):
        event("sync_only before")
        response = get_response(request)
        event("sync_only after")
        return response

    return middleware


sync_only.sync_capable = True
sync_only.async_capable = False


request_started.connect(lambda sender, **kwargs: event(f"request_started {sender.__name__} {sorted(kwargs)}"), weak=False)
request_finished.connect(lambda sender, **kwargs: event(f"request_finished {sender.__name__} {sorted(kwargs)}"), weak=False)
request_finished.connect(lambda sender, **kwargs: FINISHED.set(), weak=False)
got_request_exception.connect(
    lambda sender, request, **kwargs: event(f"got_request_exception {type(sender).__name__} {request.path}"),
    weak=False,
)


def sync_view(request):
    event("sync_view")
    THREAD_NAMES.add(threading.current_thread().name.rstrip("0123456789_-"))
    return HttpResponse(f"sync {VAR.get()}")


async def async_view(request):
    event("async_view")
    VAR.set("from async_view")
    return HttpResponse("async")


def raising_view(request):
    event("raising_view")
    raise RuntimeError(request.GET.get("message", "boom in view"))


async def async_raising_view(request):
    event("async_raising_view")
    raise RuntimeError(request.GET.get("message", "boom in async view"))


def orm_view(request):
    event("orm_view")
    before = connection.connection is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"closed_at_start": before})


async def async_orm_view(request):
    event("async_orm_view")
    with connection.cursor() as cursor:  # SynchronousOnlyOperation
        cursor.execute("SELECT 1")
    return HttpResponse("unreachable")


@csrf_exempt
def body_view(request):
    event("body_view")
    stream = request._stream
    rolled = getattr(stream, "_rolled", None)
    return JsonResponse({"length": len(request.body), "rolled": rolled, "head": request.body[:10].decode()})


def stream_view(request):
    event("stream_view")

    def parts():
        event("stream part 1")
        yield b"one,"
        event("stream part 2")
        yield b"two"

    return StreamingHttpResponse(parts())


async def async_stream_view(request):
    async def parts():
        yield b"a1,"
        await asyncio.sleep(0)
        yield b"a2"

    return StreamingHttpResponse(parts())


def file_view(request):
    handle = tempfile.TemporaryFile()
    handle.write(b"x" * 150_000)
    handle.seek(0)
    return FileResponse(handle, content_type="application/octet-stream")


BARRIER = threading.Barrier(2, timeout=10)


def barrier_view(request):
    event("barrier_view")
    BARRIER.wait()  # both requests in their views at once, or BrokenBarrierError
    return HttpResponse("met")


STARTED = asyncio.Event


async def forever_view(request):
    event("forever_view")
    CANCELLED.clear()
    try:
        FOREVER_STARTED.set()
        FOREVER_STARTED_ANY_LOOP.set()
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        CANCELLED.set()
        raise
    return HttpResponse("never")


SYNC_STARTED = threading.Event()
RELEASE = threading.Event()


def blocking_view(request):
    event("blocking_view")
    SYNC_STARTED.set()
    RELEASE.wait(10)
    event("blocking_view returns")
    return HttpResponse("late")


CLOSE_STARTED = threading.Event()
CLOSE_RELEASE = threading.Event()


class SlowCloseResponse(HttpResponse):
    """A response whose close() (which sends request_finished) waits to be
    released."""

    def close(self):
        event("close starts")
        CLOSE_STARTED.set()
        CLOSE_RELEASE.wait(10)
        super().close()
        event("close returns")


def slow_close_view(request):
    event("slow_close_view")
    return SlowCloseResponse("closing slowly", status=int(request.GET.get("status", "200")))


def local_view(request):
    seen = getattr(LOCAL, "value", None)
    LOCAL.value = request.GET.get("set")
    return JsonResponse({"seen": seen})


urlpatterns = [
    path("sync", sync_view),
    path("async", async_view),
    path("raise", raising_view),
    path("araise", async_raising_view),
    path("orm", orm_view),
    path("aorm", async_orm_view),
    path("body", body_view),
    path("stream", stream_view),
    path("astream", async_stream_view),
    path("file", file_view),
    path("barrier", barrier_view),
    path("forever", forever_view),
    path("local", local_view),
    path("block", blocking_view),
    path("slowclose", slow_close_view),
]

CANCELLED = threading.Event()
# Set by forever_view on whichever loop serves it (the served scenarios run
# the handler on fastbase's server, on a loop of its own).
FOREVER_STARTED_ANY_LOOP = threading.Event()
FINISHED = threading.Event()
THREAD_NAMES: set[str] = set()
FOREVER_STARTED: asyncio.Event


def scope(path_: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b"") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path_,
        "raw_path": path_.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def call(
    handler,
    scope_: dict,
    body: list[bytes] | None = None,
    disconnect: asyncio.Event | None = None,
    truncated: bool = False,
    sent: asyncio.Event | None = None,
) -> dict:
    """One request; ``truncated``: the client disconnects after ``body``
    with more_body still true; ``sent`` is set once the response is out."""
    chunks = list(body or [b""])
    done = asyncio.Event()
    messages: list[dict] = []

    async def receive() -> dict:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks) or truncated}
        if disconnect is not None:
            await disconnect.wait()
        else:
            await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()
            if sent is not None:
                sent.set()

    await handler(scope_, receive, send)
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]} if start else {}
    bodies = [m.get("body", b"") for m in messages if m["type"] == "http.response.body"]
    return {
        "status": start["status"] if start else None,
        "x-var": headers.get("x-var"),
        "body": b"".join(bodies).decode(errors="replace")[:200],
        "body_messages": len(bodies),
        "body_length": sum(len(b) for b in bodies),
    }


def _get(port: int, path_: str) -> bytes:
    """A whole response to one GET on a connection of its own."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path_} HTTP/1.1\r\nHost: testserver\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def served_disconnect(handler, loop_kind: str) -> dict:
    """On fastbase's own server (which tells the handler that the client has
    gone, where Django's handler listens on receive()): a client sends a
    request to a view that waits forever and closes its connection; the view
    is cancelled, request_finished fires, and the next request is served.
    Runs in a thread of its own, the server on another."""
    from fastbase.config import Config
    from fastbase.server import Server

    global FOREVER_STARTED
    FOREVER_STARTED = asyncio.Event()  # never awaited here: forever_view only sets it
    FOREVER_STARTED_ANY_LOOP.clear()
    CANCELLED.clear()
    server = Server(Config(app=handler, host="127.0.0.1", port=0, interface="asgi", lifespan="off", log_level="warning", loop=loop_kind))
    thread = server.start_in_thread()
    try:
        FINISHED.clear()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /forever HTTP/1.1\r\nHost: testserver\r\n\r\n")
            started = FOREVER_STARTED_ANY_LOOP.wait(10)
        # The connection is closed: the client is gone.
        finished = FINISHED.wait(10)
        outcome = {"view started": started, "view cancelled": CANCELLED.wait(10), "request_finished": finished}
        outcome["calls"] = take_events()
        outcome["next request"] = _get(server.port, "/async").split(b"\r\n", 1)[0].decode()
        take_events()
        return outcome
    finally:
        server.stop()
        thread.join(10)


def take_events() -> list[tuple[str, str]]:
    """The events since the last call, threads named in order of appearance."""
    loop_thread = threading.main_thread().ident
    names: dict[int, str] = {}
    out = []
    for name, ident in EVENTS:
        if ident == loop_thread:
            label = "loop"
        else:
            label = names.setdefault(ident, f"T{len(names) + 1}")
        out.append((name, label))
    EVENTS.clear()
    return out


async def close_started() -> None:
    """Until SlowCloseResponse.close() has begun (10 s at most: a handler that
    never gets there)."""
    deadline = time.monotonic() + 10
    while not CLOSE_STARTED.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


async def released(task: asyncio.Future) -> tuple[str, bool]:
    """Whether ``task`` (cancelled, its response's close() blocked) ended in
    the next 100 loop passes, which give a coroutine that does not wait for
    the close the chance to end; then, the close released, how it ended."""
    for _turn in range(100):
        await asyncio.sleep(0)
    ended_early = task.done()
    CLOSE_RELEASE.set()
    try:
        await asyncio.wait_for(task, 10)
        return "completed", ended_early
    except asyncio.CancelledError:
        return "cancelled", ended_early


async def cancelled_twice(handler) -> dict:
    """fastbase's handler cancelled again and again (Django's async tests
    cancel twice: the communicator's clean-up, then asyncio.run's, some loop
    passes apart; here three times) while its response closes, or while an error response (closed
    after it is written) goes out: either way the coroutine ends only after
    the response's close() and request_finished. (Django's handler lets the
    second cancellation end its wait for its thread, or never closes a
    response whose sending was cancelled.)"""
    out = {}
    # fastbase's handler closes a complete response below 400 in the
    # request's last sync hop, before the response goes out; one of 400 and
    # above in a closing hop after, as Django's handler closes every one.
    cases = {
        "while the response closes": b"",
        "while an error response closes": b"status=409",
        "while an error response goes out": b"status=409",
    }
    for case, query in cases.items():
        CLOSE_STARTED.clear()
        CLOSE_RELEASE.clear()
        sending = asyncio.Event()
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive(requests: list = requests) -> dict:
            if requests:
                return requests.pop()
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async def send(message: dict, case: str = case, sending: asyncio.Event = sending) -> None:
            if case.endswith("goes out") and message["type"] == "http.response.body":
                sending.set()
                await asyncio.Event().wait()

        task = asyncio.ensure_future(handler(scope("/slowclose", query=query), receive, send))
        if case.endswith("goes out"):
            await asyncio.wait_for(sending.wait(), 10)
        else:
            await close_started()
        for _cancellation in range(3):
            task.cancel()
            for _turn in range(20):
                await asyncio.sleep(0)
        await close_started()
        outcome, ended_early = await released(task)
        out[f"cancelled twice {case}"] = {"outcome": outcome, "ended before the close returned": ended_early, "calls": take_events()}
    return out


def threads_not_pooled() -> set:
    """Threads besides the main one, fastbase's idle lanes and the loop's
    default executor (which Django's thread_sensitive=False calls use)."""
    from fastbase.django.threads import pool

    idle = {lane.thread for lane, _ in pool._idle}
    return {
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and t not in idle and not t.name.startswith(("asyncio_", "uvloop_"))
    }


def threads_left_behind(baseline: set) -> int:
    """Threads not pooled now that were not so at ``baseline``: by identity,
    not by count, so a thread of the warm-up that ends (or a lane that comes
    back) meanwhile does not hide one left behind."""
    return len(threads_not_pooled() - baseline)


async def scenarios(handler) -> dict:
    global FOREVER_STARTED

    results: dict = {}

    async def one(name: str, *args, **kwargs) -> None:
        response = await call(handler, *args, **kwargs)
        results[name] = {"response": response, "events": take_events()}

    # Warm up (imports, URL resolver, the first thread).
    await call(handler, scope("/sync"))
    take_events()
    baseline = threads_not_pooled()

    await one("sync view", scope("/sync"))
    await one("async view", scope("/async"))
    await one("short circuit in process_request", scope("/sync", headers=[(b"x-short", b"1")]))
    await one("exception in process_request", scope("/sync", headers=[(b"x-boom", b"request")]))
    await one("exception in process_response", scope("/async", headers=[(b"x-boom", b"response")]))
    await one("exception in sync view", scope("/raise"))
    await one("exception in async view", scope("/araise"))
    await one("sync view exception handled by process_exception", scope("/raise", query=b"message=handled"))
    await one("async view exception handled by process_exception", scope("/araise", query=b"message=handled"))
    await one("not found", scope("/nowhere"))
    await one("csrf refused", scope("/sync", method="POST"))
    await one("orm in sync view", scope("/orm"))
    await one("orm in sync view again", scope("/orm"))
    await one("orm in async view", scope("/aorm"))
    await one("body in three messages", scope("/body", method="POST"), body=[b"abc", b"def", b"ghi"])
    await one("body spooled to disk", scope("/body", method="POST"), body=[b"y" * 600, b"z" * 600])
    await one("streaming, sync iterator", scope("/stream"))
    await one("streaming, async iterator", scope("/astream"))
    await one("file response", scope("/file"))
    await one("head", scope("/sync", method="HEAD"))

    # Two requests whose sync views must run at the same time on two threads.
    first, second = await asyncio.gather(call(handler, scope("/barrier")), call(handler, scope("/barrier")))
    events = take_events()
    view_threads = {thread for name, thread in events if name == "barrier_view"}
    results["concurrent sync views"] = {
        "statuses": [first["status"], second["status"]],
        "view threads": len(view_threads),
        "loop": "loop" in view_threads,
    }

    # Keep-alive: the next request on a connection starts as soon as the
    # previous response is out (as a server starts it), while the previous
    # request's response.close()/request_finished may still be running.
    keep_alive = {**scope("/async"), "client": ("127.0.0.1", 6000)}
    sent = asyncio.Event()
    previous = asyncio.ensure_future(call(handler, keep_alive, sent=sent))
    await sent.wait()
    following = asyncio.ensure_future(call(handler, {**keep_alive, "path": "/sync", "raw_path": b"/sync"}))
    statuses = [(await previous)["status"], (await following)["status"]]
    results["keep-alive, next request started once the response is out"] = {"statuses": statuses, "calls": take_events()}

    # A client that goes away while an async view waits forever.
    FOREVER_STARTED = asyncio.Event()
    gone = asyncio.Event()
    task = asyncio.ensure_future(call(handler, scope("/forever"), disconnect=gone))
    await FOREVER_STARTED.wait()
    gone.set()
    response = await asyncio.wait_for(task, 10)
    results["disconnect while an async view waits"] = {
        "response": response,
        "view cancelled": CANCELLED.is_set(),
        "events": take_events(),
    }

    # A client that goes away while a sync view blocks: the view runs on to
    # its end (a thread cannot be stopped), request_finished waits for it on
    # the request's thread, no response goes out, and the thread is free after.
    gone = asyncio.Event()
    task = asyncio.ensure_future(call(handler, scope("/block"), disconnect=gone))
    while not SYNC_STARTED.is_set():
        await asyncio.sleep(0.005)
    gone.set()
    for _turn in range(100):  # let the handler see the disconnect first
        await asyncio.sleep(0)
    RELEASE.set()
    response = await asyncio.wait_for(task, 10)
    results["disconnect while a sync view blocks"] = {"response": response, "events": take_events()}

    # The request's task cancelled (a server stopping, a test's loop ending)
    # while its response closes: the coroutine ends only once the close, and
    # request_finished with it, has run, never leaving them to fire later.
    task = asyncio.ensure_future(call(handler, scope("/slowclose")))
    await close_started()
    task.cancel()
    outcome, ended_early = await released(task)
    results["cancelled while the response closes"] = {
        "response": outcome,
        "ended before the close returned": ended_early,
        "events": take_events(),
    }

    # Where request_finished falls against the response's write: Django's
    # handler writes, then closes; fastbase's closes a complete response
    # below 400 at the end of the last sync hop, before the write.
    async def sent_and_recorded(scope_: dict) -> list:
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict:
            if requests:
                return requests.pop()
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                event("body written")

        await handler(scope_, receive, send)
        return [name for name, _ in take_events() if name.startswith(("request_", "body"))]

    results["request_finished against the write"] = {
        "sync view": await sent_and_recorded(scope("/sync")),
        "async view": await sent_and_recorded(scope("/async")),
        "not found": await sent_and_recorded(scope("/nowhere")),
        "streaming": await sent_and_recorded(scope("/stream")),
    }

    if getattr(handler, "_whole_run", None) is not None:
        # fastbase's handler on its own path (with other middleware it runs
        # Django's handle, with Django's behaviour).
        results.update(await cancelled_twice(handler))

    # A client that goes away before its body is complete.
    gone = asyncio.Event()
    gone.set()
    response = await asyncio.wait_for(
        call(
            handler,
            scope("/body", method="POST", headers=[(b"content-length", b"100")]),
            body=[b"partial"],
            disconnect=gone,
            truncated=True,
        ),
        10,
    )
    results["disconnect mid-body"] = {"response": response, "events": take_events()}

    loop_kind = "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
    results["served by fastbase: disconnect while an async view waits"] = await asyncio.to_thread(served_disconnect, handler, loop_kind)

    results["sync view thread names"] = sorted(THREAD_NAMES)
    # Threads finish after their requests (asgiref joins Django's in a thread
    # of its own; a lane comes back when its last call returns): poll.
    for _ in range(500):
        if threads_left_behind(baseline) <= 0:
            break
        await asyncio.sleep(0.01)
    results["threads left behind"] = threads_left_behind(baseline)
    if os.environ.get("FASTBASE_SCENARIO_THREADS"):
        print([t.name for t in threading.enumerate()], file=sys.stderr)
    return results


def main() -> None:
    which = sys.argv[1]
    if which == "django":
        from django.core.handlers.asgi import ASGIHandler
    else:
        from fastbase.django import ASGIHandler  # type: ignore[assignment]
    handler = ASGIHandler()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, run_syncdb=True)
    if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
        import uvloop

        results = uvloop.run(scenarios(handler))
    else:
        results = asyncio.run(scenarios(handler))
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
