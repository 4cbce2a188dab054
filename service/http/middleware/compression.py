"""Starlette's GZipMiddleware, skipped for clients that do not accept gzip and for responses
that are already encoded.

For clients that do not accept gzip Starlette still builds a responder and re-parses the
response headers on every request; on /healthz that cost 30 % of the throughput
(docs/perf-audit.md). Bypassing it changes one thing: uncompressed responses no longer get
`Vary: Accept-Encoding`, which is safe because every compressed response still carries it, so a
shared cache can never hand gzip to a client that did not ask for it.

A cached read arrives gzip-encoded already (service/http/caching.py). Starlette would pass it
through too, but only after building its responder and parsing the headers into a mapping; here
one scan of the raw header list sends it straight on, as it does a bodiless 304 and a body whose
Content-Length is under the threshold (Starlette would not compress those either).
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware as StarletteGZipMiddleware
from starlette.middleware.gzip import GZipResponder
from starlette.types import Message, Receive, Scope, Send

from service.http.negotiation import accepts_gzip


def _nothing_to_compress(message: Message, minimum_size: int) -> bool:
    """True for a response Starlette's responder would send unchanged: already encoded, a
    304, or a body whose declared length is under the threshold."""
    if message["status"] == 304:
        return True
    for name, value in message.get("headers", ()):
        if name == b"content-encoding":
            return True
        if name == b"content-length" and int(value) < minimum_size:
            return True
    return False


class GZipWhenAcceptedMiddleware(StarletteGZipMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                # q-values count: `gzip;q=0` is a refusal (service/http/negotiation.py).
                if name == b"accept-encoding" and accepts_gzip(value):
                    await self._maybe_compress(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _maybe_compress(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Decided at the response's start: the headers say whether there is anything to do.
        forward: Send | None = None

        async def route(message: Message) -> None:
            nonlocal forward
            if forward is None:
                if message["type"] == "http.response.start" and _nothing_to_compress(
                    message, self.minimum_size
                ):
                    forward = send
                else:
                    responder = GZipResponder(
                        self.app,
                        self.minimum_size,
                        compresslevel=self.compresslevel,
                        thread_minimum_size=self.thread_minimum_size,
                        exclude_content_types=self.exclude_content_types,
                    )
                    responder.send = send
                    forward = responder.send_with_compression
            await forward(message)

        await self.app(scope, receive, route)
