"""Raw WSGI and ASGI apps for the load tests: the same three routes in both.

``/`` answers 13 bytes of plain text, ``/100k`` 100 KB, ``/echo`` the request
body. No framework, so the numbers measure the server, not the app.
"""

from __future__ import annotations

HELLO = b"Hello, World!"
LARGE = bytes(range(256)) * 400  # 102,400 bytes
assert len(LARGE) == 100 * 1024

_TEXT = ("Content-Type", "text/plain")
_BINARY = ("Content-Type", "application/octet-stream")


def wsgi(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/100k":
        body, content_type = LARGE, _BINARY
    elif path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body, content_type = environ["wsgi.input"].read(length), _BINARY
    else:
        body, content_type = HELLO, _TEXT
    start_response("200 OK", [content_type, ("Content-Length", str(len(body)))])
    return [body]


_ATEXT = (b"content-type", b"text/plain")
_ABINARY = (b"content-type", b"application/octet-stream")


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        # Answer lifespan properly so no server logs a warning per start.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/100k":
        body, content_type = LARGE, _ABINARY
    elif path == "/echo":
        pieces = []
        more = True
        while more:
            message = await receive()
            pieces.append(message.get("body", b""))
            more = message.get("more_body", False)
        body, content_type = b"".join(pieces), _ABINARY
    else:
        body, content_type = HELLO, _ATEXT
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [content_type, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
