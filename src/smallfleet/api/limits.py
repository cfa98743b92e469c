"""The request body limit, as a pure ASGI middleware: a body over `max_bytes` is answered 413 in OpenAI's
shape (`request_too_large`). A declared Content-Length over the limit is refused before a byte of the body
is read; a body without one (chunked) is counted as it arrives and cut off the moment it passes the limit,
so a 30 MB upload never sits in memory whole. (Starlette's own limit answers a declared size in plain text,
hence this one.)
"""

from __future__ import annotations

import json
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smallfleet.api.errors import error_body


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the body passes the limit; the app's HTTP error handler answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes (SMALLFLEET_MAX_BODY_BYTES)"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            body = json.dumps(error_body(too_large_message(self.max_bytes), "invalid_request_error",
                                         code="request_too_large")).encode()
            await send({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
