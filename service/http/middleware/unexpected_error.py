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
from starlette.types import ASGIApp, Receive, Scope, Send

from service.response_headers import response_start

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp, handler: ErrorHandler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Whether the response started is recorded by the one send wrapper of the header layers.
        start, send = response_start(scope, send)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if start.started:
                raise
            response = await self.handler(Request(scope, receive), exc)
            await response(scope, receive, send)
