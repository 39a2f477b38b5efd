import json
import urllib.request

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

# Edited by the autoreloader test: the served text changes with this line.
GREETING = "Hello from Django"


def index(request):
    return HttpResponse(GREETING)


def hold(request):
    """A request the test keeps in flight: marks FASTBASE_TEST_RELEASE + ".held",
    then waits (30 s at most) until the file FASTBASE_TEST_RELEASE exists."""
    import os
    import time

    path = os.environ["FASTBASE_TEST_RELEASE"]
    open(path + ".held", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return HttpResponse("released")


def db(request):
    """Touches the database, which Django refuses inside a running event loop."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (value,) = cursor.fetchone()
    return HttpResponse(f"db {value}")


def version(request):
    from . import views

    return HttpResponse(views.GREETING)


@csrf_exempt
def echo(request):
    response = HttpResponse(request.body, content_type="application/octet-stream")
    response["X-Content-Length"] = request.META.get("CONTENT_LENGTH", "")
    return response


def stream(request):
    return StreamingHttpResponse(f"line {i}\n" for i in range(5))


def boom(request):
    raise RuntimeError("this view always fails")


async def async_view(request):
    return HttpResponse("async ok")


def meta(request):
    keys = ["REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "wsgi.url_scheme"]
    data = {k: str(request.META.get(k)) for k in keys}
    data["http_keys"] = sorted(k for k in request.META if k.startswith("HTTP_"))
    return JsonResponse(data)


def selfcall(request):
    """Call back into the server serving this very request."""
    url = request.build_absolute_uri("/")
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    return HttpResponse(json.dumps({"inner": body}), content_type="application/json")


def big(request):
    """1 GiB with its Content-Length, produced as it is sent: a client that
    leaves early leaves mid-body."""
    block = b"x" * 65536
    response = StreamingHttpResponse(block for _ in range(16384))
    response["Content-Length"] = str(16384 * 65536)
    return response


def thread(request):
    """The name of the thread this sync view runs on (which ASGI handler)."""
    import threading

    return HttpResponse(threading.current_thread().name)
