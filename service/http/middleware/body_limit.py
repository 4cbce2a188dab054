"""Refuse bodies over the limit without reading them whole, and bodies that never arrive.

A declared Content-Length over the limit is answered with 413 before a byte of the body is
read; a chunked body is counted as it streams and refused the moment it crosses the limit.
A client that stops sending mid-body gets 408 after `read_timeout_s` instead of holding its
connection (and the request's memory) open for as long as it likes.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.responses import error_response
from service.http.transport_errors import PayloadTooLargeError, RequestTimeoutError

# A sentinel: the request carries no body at all.
NO_BODY = "no body"


def _declared_length(scope: Scope) -> str | None:
    """The Content-Length field's value; None for a body of unknown length (chunked); NO_BODY
    when the request declares no body."""
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            return str(value.decode("latin-1"))
        if name == b"transfer-encoding":
            chunked = True
    return None if chunked else NO_BODY


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, read_timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _declared_length(scope) if scope["type"] == "http" else NO_BODY
        if declared is NO_BODY:
            # Not HTTP, or a request with neither Content-Length nor Transfer-Encoding: it has
            # no body (RFC 9112 6.3), so there is nothing to limit or wait for (most requests).
            await self.app(scope, receive, send)
            return
        if declared is not None:
            if not declared.isdigit():
                response = error_response(400, "malformed_request", "invalid Content-Length")
                await response(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        body_complete = False
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal seen, body_complete, deadline
            if body_complete:
                # After the body, receive() only waits for a disconnect: no deadline applies.
                return await receive()
            loop = asyncio.get_running_loop()
            # One deadline for the whole body: a client trickling a byte at a time must not
            # restart the clock with every chunk.
            deadline = deadline or loop.time() + self.read_timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request body did not arrive within {self.read_timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                body_complete = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLargeError(
                        self._message(), details={"max_bytes": self.max_bytes}
                    )
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            self._message(),
            {"max_bytes": self.max_bytes},
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"
