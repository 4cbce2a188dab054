"""Helmet's defaults, adapted to a JSON API that no browser should render, frame or embed.

Differences from Helmet: the CSP allows nothing (`default-src 'none'`) instead of a page's worth
of sources, with no `upgrade-insecure-requests` so plain-HTTP local use keeps working;
`X-Frame-Options` is DENY rather than SAMEORIGIN; `X-Download-Options` (old IE only) is dropped.

`Cross-Origin-Resource-Policy: same-origin` stays: browsers enforce it only on `no-cors` requests
(`<img>`, `<script>`, ...), not on CORS-mode `fetch`, so a web front end on another origin calling
this API through CORS is unaffected, while embedding our JSON in someone else's page is refused.

Headers the app set itself win, so one route (say, an HTML docs page) can loosen its own CSP.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.response_headers import DefaultHeaders, response_start

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Origin-Agent-Cluster": "?1",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-DNS-Prefetch-Control": "off",
    "X-Frame-Options": "DENY",
    "X-Permitted-Cross-Domain-Policies": "none",
    # 0 disables the legacy XSS auditor, which itself enabled cross-site leaks.
    "X-XSS-Protection": "0",
}
HSTS = "max-age=31536000; includeSubDomains"
# Version banners help an attacker pick an exploit and help no client.
REMOVED = ("Server", "X-Powered-By")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        # HSTS only behind TLS: sent over plain HTTP in development it would pin localhost to HTTPS
        # in the browser for a year.
        headers = {**HEADERS, "Strict-Transport-Security": HSTS} if hsts else dict(HEADERS)
        # Encoded once: this runs on every response, so no per-request header objects. Headers
        # the app set itself win; REMOVED ones are stripped (DefaultHeaders).
        self.defaults = DefaultHeaders(
            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            [name.lower().encode("latin-1") for name in REMOVED],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Added at the response start by the one send wrapper (service/response_headers.py).
        start, send = response_start(scope, send)
        start.defaults = self.defaults
        await self.app(scope, receive, send)
