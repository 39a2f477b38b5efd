"""Apps for the operations tests (metrics, static files, headers, logs)."""

from __future__ import annotations

import sys


def wsgi(environ, start_response):
    """``/`` hello; ``/header`` sets its own X-Frame-Options; ``/block``
    waits for a line on the server's stdin (announcing itself first)."""
    path = environ["PATH_INFO"]
    headers = [("Content-Type", "text/plain")]
    body = b"hello"
    if path == "/header":
        headers.append(("X-Frame-Options", "SAMEORIGIN"))
    elif path == "/block":
        print(f"app: entered {path}", file=sys.stderr, flush=True)
        body = b"released by " + sys.stdin.buffer.readline().strip()
    elif path == "/missing":
        start_response("404 Not Found", headers)
        return [b"no such page"]
    start_response("200 OK", headers + [("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope, receive, send):
    """HTTP: hello (``/header`` sets X-Frame-Options); WebSocket: echo."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    headers = [(b"content-type", b"text/plain")]
    if scope["path"] == "/header":
        headers.append((b"x-frame-options", b"SAMEORIGIN"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})
