"""ASGI middleware that bounds request bodies before any route reads them."""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ErrorCode

__all__ = ["BodySizeLimit"]


class _TooLarge(HTTPException):
    """Raised inside the app while it reads the body; FastAPI's handlers turn it into 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body is larger than {max_bytes} bytes.")


class _TooSlow(HTTPException):
    """The body did not arrive within the deadline (a slow-loris client)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"The request body did not arrive within {seconds:g} s.")


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while streaming (so a
    chunked upload cannot grow past the limit either), and bodies that take longer than
    `body_timeout_s` to arrive with 408: uvicorn has no such timeout, so a client trickling a
    byte a second would otherwise hold a connection and a task for ever."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout_s: float = 15.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await self._refuse(send)
                    return
        seen = 0
        started = False
        body_done = False
        deadline = time.monotonic() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the body, receive() waits for the disconnect (SSE): no limit
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow(self.body_timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)
        except _TooSlow as slow:
            if not started:
                await self._refuse(send, 408, ErrorCode.REQUEST_TIMEOUT, str(slow.detail))

    async def _refuse(
        self, send: Send, status: int = 413, code: ErrorCode | None = None, message: str = ""
    ) -> None:
        body = orjson.dumps(
            {
                "code": code or ErrorCode.PAYLOAD_TOO_LARGE,
                "message": message or f"The request body is larger than {self.max_bytes} bytes.",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
