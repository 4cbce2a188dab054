"""Starlette's GZipMiddleware, skipped for clients that do not accept gzip.

For such clients Starlette still builds a responder and re-parses the response headers on
every request; on /healthz that cost 30 % of the throughput (docs/perf-audit.md). Bypassing it
changes one thing: uncompressed responses no longer get `Vary: Accept-Encoding`, which is safe
because every compressed response still carries it, so a shared cache can never hand gzip to a
client that did not ask for it.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope, Send


class GZipWhenAcceptedMiddleware(GZipMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"accept-encoding" and b"gzip" in value.lower():
                    await super().__call__(scope, receive, send)
                    return
        await self.app(scope, receive, send)
