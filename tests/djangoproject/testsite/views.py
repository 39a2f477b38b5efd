"""Views the server tests exercise; each answers something a test can check."""

import json
import zlib

from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def index(request):
    """GET/HEAD; a POST is refused by the CSRF middleware (403)."""
    return HttpResponse("Hello from Django\n", content_type="text/plain; charset=utf-8")


@csrf_exempt
def echo(request):
    """What Django made of the request: method, body, form and JSON data."""
    body = request.body
    data = {
        "method": request.method,
        "path": request.path,
        "GET": {key: request.GET.getlist(key) for key in request.GET},
        "content_type": request.content_type,
        "content_length": request.META.get("CONTENT_LENGTH"),
        "body": body.decode("latin-1"),
        "POST": {key: request.POST.getlist(key) for key in request.POST},
    }
    if request.content_type == "application/json":
        data["json"] = json.loads(body)
    return JsonResponse(data)


@csrf_exempt
def upload(request):
    """Reads the body in 64 KB pieces (any size: request.body would stop at
    DATA_UPLOAD_MAX_MEMORY_SIZE); answers its length and CRC-32."""
    crc = total = 0
    while True:
        piece = request.read(65536)
        if not piece:
            break
        total += len(piece)
        crc = zlib.crc32(piece, crc)
    return JsonResponse({"bytes": total, "crc32": crc, "content_length": request.META.get("CONTENT_LENGTH")})


def meta(request):
    """request.META's string values."""
    return JsonResponse({key: value for key, value in request.META.items() if isinstance(value, str)})


def stream(request):
    """A StreamingHttpResponse of ``?parts=N`` lines (no Content-Length)."""
    parts = int(request.GET.get("parts", "5"))
    return StreamingHttpResponse((f"part {i}\n".encode() for i in range(parts)), content_type="text/plain")


def file(request):
    """A FileResponse, which Django hands to wsgi.file_wrapper."""
    return FileResponse(open(settings.BASE_DIR / "static" / "hello.txt", "rb"), content_type="text/plain")


def boom(request):
    raise RuntimeError("a view that raises")
