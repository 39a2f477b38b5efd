"""Raw ASGI WebSocket echo app for the WebSocket load tests (bench/ws_bench.py).

Every server under test runs this same app: accept, then send each message
back as it came (text as text, bytes as bytes) until the client leaves. Any
HTTP request gets 13 bytes of plain text, which is how the benchmark script
sees that a server is up. No framework, so the numbers measure the server.
"""

from __future__ import annotations

HELLO = b"Hello, World!"


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    await send({"type": "websocket.send", "text": text})
                else:
                    await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
            elif message["type"] == "websocket.disconnect":
                return
    elif kind == "http":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}
        )
        await send({"type": "http.response.body", "body": HELLO})
    elif kind == "lifespan":
        # Answered properly so no server logs a warning per start.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
