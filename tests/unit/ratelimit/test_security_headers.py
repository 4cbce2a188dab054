from __future__ import annotations

from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from service.http.middleware.security_headers import SecurityHeadersMiddleware

API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "origin-agent-cluster": "?1",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-dns-prefetch-control": "off",
    "x-frame-options": "DENY",
    "x-permitted-cross-domain-policies": "none",
    "x-xss-protection": "0",
}
HSTS = {"strict-transport-security": "max-age=31536000; includeSubDomains"}


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def banner(request: Request) -> Response:
    return JSONResponse({"ok": True}, headers={"Server": "starlette/1.0", "X-Powered-By": "py"})


async def docs(request: Request) -> Response:
    return HTMLResponse("<html></html>", headers={"Content-Security-Policy": "default-src 'self'"})


def make_client(*, hsts: bool) -> TestClient:
    app = Starlette(
        routes=[Route("/ok", ok), Route("/banner", banner), Route("/docs", docs)],
        middleware=[Middleware(SecurityHeadersMiddleware, hsts=hsts)],
    )
    return TestClient(app)


def without_body_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("content-length", "content-type")}


def test_every_response_carries_exactly_the_api_security_headers() -> None:
    response = make_client(hsts=False).get("/ok")

    assert without_body_headers(response.headers) == API_HEADERS


def test_hsts_is_added_only_when_enabled() -> None:
    response = make_client(hsts=True).get("/ok")

    assert without_body_headers(response.headers) == {**API_HEADERS, **HSTS}


def test_error_responses_carry_the_headers_too() -> None:
    response = make_client(hsts=True).get("/no-such-route")

    assert response.status_code == 404
    assert without_body_headers(response.headers) == {**API_HEADERS, **HSTS}


def test_server_and_x_powered_by_set_by_the_app_are_removed() -> None:
    response = make_client(hsts=False).get("/banner")

    assert "server" not in response.headers
    assert "x-powered-by" not in response.headers
    assert without_body_headers(response.headers) == API_HEADERS


def test_a_route_may_loosen_its_own_content_security_policy() -> None:
    response = make_client(hsts=False).get("/docs")

    assert response.headers["content-security-policy"] == "default-src 'self'"
    assert response.headers["x-frame-options"] == "DENY"
