"""Static files for runserver's ASGI mode, streamed from disk.

Django's ASGIStaticFilesHandler reads each file whole into memory before
sending it; this one lets Django's ``serve`` view decide (404s, 304s,
headers) and then hands the file to the server with the
``http.response.pathsend`` extension, so it goes out with sendfile.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse


class StreamingASGIStaticFilesHandler(ASGIStaticFilesHandler):
    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] != "http" or not self._should_handle(scope["path"]) or "http.response.pathsend" not in scope.get("extensions", {}):
            return await super().__call__(scope, receive, send)
        request = ASGIRequest(scope, _EmptyBody())
        response = await self.get_response_async(request)
        path = getattr(getattr(response, "file_to_stream", None), "name", None)
        if not isinstance(response, FileResponse) or not isinstance(path, str):
            return await self.send_response(response, send)
        headers = [(name.encode("ascii"), value.encode("latin-1")) for name, value in response.items()]
        try:
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
            else:
                await send({"type": "http.response.pathsend", "path": path})
        finally:
            await sync_to_async(response.close, thread_sensitive=False)()

    async def get_response_async(self, request: Any) -> Any:
        # The parent wraps FileResponse bodies to read them whole; undo that
        # by asking the mixin's plain version.
        from django.contrib.staticfiles.handlers import StaticFilesHandlerMixin

        response = await StaticFilesHandlerMixin.get_response_async(self, request)
        response._resource_closers.append(request.close)
        return response


class _EmptyBody:
    """Static file requests carry no body Django needs to read."""

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass
