"""The app's own last resort, placed inside the request-context, security-header and CORS
layers.

Starlette renders a handler for `Exception` in ServerErrorMiddleware, the outermost layer, so
its 500 never passes through the user middleware: no security headers, no `X-Request-ID`, no
CORS. Catching here instead gives a 500 every header any other answer gets, and the request
context still logs and counts it. Exceptions raised after the response started cannot be
answered any more and go on to the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp, handler: ErrorHandler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:
                raise
            response = await self.handler(Request(scope, receive), exc)
            await response(scope, receive, send)
