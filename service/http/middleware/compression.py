"""Starlette's GZipMiddleware, skipped for clients that do not accept gzip.

For such clients Starlette still builds a responder and re-parses the response headers on
every request; on /healthz that cost 30 % of the throughput (docs/perf-audit.md). Bypassing it
changes one thing: uncompressed responses no longer get `Vary: Accept-Encoding`, which is safe
because every compressed response still carries it, so a shared cache can never hand gzip to a
client that did not ask for it.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware, GZipResponder
from starlette.types import Receive, Scope, Send

from service.http.negotiation import accepts_gzip


class GZipWhenAcceptedMiddleware(GZipMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                # Negotiated here, q-values included (`gzip;q=0` is a refusal); Starlette's own
                # check is a substring test, so its responder is used directly.
                if name == b"accept-encoding" and accepts_gzip(value):
                    responder = GZipResponder(
                        self.app,
                        self.minimum_size,
                        compresslevel=self.compresslevel,
                        thread_minimum_size=self.thread_minimum_size,
                        exclude_content_types=self.exclude_content_types,
                    )
                    await responder(scope, receive, send)
                    return
        await self.app(scope, receive, send)
