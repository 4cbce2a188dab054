"""Refuse bodies over the limit without reading them whole.

A declared Content-Length over the limit is answered with 413 before a byte of the body is
read; a chunked body is counted as it streams and refused the moment it crosses the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.domain.errors import PayloadTooLargeError
from service.http.responses import error_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                response = error_response(400, "malformed_request", "invalid Content-Length")
                await response(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLargeError(
                        self._message(), details={"max_bytes": self.max_bytes}
                    )
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", self._message(), {"max_bytes": self.max_bytes},
            headers={"Connection": "close"},
        )  # fmt: skip
        await response(scope, receive, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"
