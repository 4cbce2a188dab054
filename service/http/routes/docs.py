"""A page for people: Swagger UI on /docs, reading /openapi.json. Its files come from the
`swagger-ui-py` package (Swagger UI 5, which reads OpenAPI 3.1; locked in uv.lock), served by
this process: no CDN, so the page works offline and loads nothing from third parties. The API
keeps its CSP of `default-src 'none'`; this page loosens only its own, to 'self'."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from service.http.endpoint import Endpoint

# Swagger UI sets style attributes inline; scripts come only from this origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pickup service API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""
INIT = b'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n'
CACHE = "public, max-age=3600"


@cache
def _asset(name: str) -> bytes:
    # Located, not imported: the package's Python side (framework adapters) is not needed.
    spec = importlib.util.find_spec("swagger_ui")
    assert spec is not None and spec.submodule_search_locations
    return (Path(spec.submodule_search_locations[0]) / "static" / name).read_bytes()


async def docs_page(request: Request) -> Response:
    return Response(
        PAGE, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": DOCS_CSP}
    )


async def docs_script(request: Request) -> Response:
    return Response(
        _asset("swagger-ui-bundle.js"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": CACHE},
    )


async def docs_init(request: Request) -> Response:
    return Response(INIT, media_type="text/javascript; charset=utf-8")


async def docs_style(request: Request) -> Response:
    return Response(
        _asset("swagger-ui.css"),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": CACHE},
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/docs",
        docs_page,
        "API page for people (Swagger UI)",
        "meta",
        None,
        rate_limit="exempt",
    ),
    Endpoint(
        "GET",
        "/docs/swagger-ui-bundle.js",
        docs_script,
        "Swagger UI script",
        "meta",
        None,
        rate_limit="exempt",
    ),
    Endpoint(
        "GET",
        "/docs/init.js",
        docs_init,
        "Swagger UI start-up script",
        "meta",
        None,
        rate_limit="exempt",
    ),
    Endpoint(
        "GET",
        "/docs/swagger-ui.css",
        docs_style,
        "Swagger UI styles",
        "meta",
        None,
        rate_limit="exempt",
    ),
]
