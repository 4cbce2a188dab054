"""The limiter decides which route a request is for exactly as Starlette's router does.

Starlette's route regex ends in `$`, which also matches before a final newline, so
`POST /v1/orders%0A` is dispatched to the order endpoint: the route policy must apply to it,
whether the middleware is given the app's route table or only the policy's template.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from service.ratelimit import Limiter, RateLimit, RateLimitMiddleware, RoutePolicy

SPELLINGS = ["/v1/orders", "/v1/orders%0A", "/v1/orders%0D", "/v1/orders/", "//v1/orders"]


def make_client(served: list[str], *, share_routes: bool) -> TestClient:
    async def orders(request: Request) -> JSONResponse:
        served.append(request.url.path)
        return JSONResponse({}, status_code=201)

    async def other(request: Request) -> JSONResponse:
        return JSONResponse({})

    routes: list[BaseRoute] = [
        Route("/v1/orders", orders, methods=["POST"]),
        Route("/v1/other", other),
    ]
    options: dict[str, Any] = {"routes": routes} if share_routes else {}
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                RateLimitMiddleware,
                limiter=Limiter("memory://"),
                default_policy=RateLimit(1000, 3600),
                route_policies=[RoutePolicy("POST", "/v1/orders", RateLimit(2, 3600))],
                **options,
            )
        ],
    )
    return TestClient(app, follow_redirects=False)


@pytest.mark.parametrize("share_routes", [True, False], ids=["route-table", "template-only"])
@pytest.mark.parametrize("path", SPELLINGS)
def test_a_spelling_the_router_dispatches_spends_the_routes_budget(
    path: str, share_routes: bool
) -> None:
    served: list[str] = []
    with make_client(served, share_routes=share_routes) as client:
        statuses = [client.post(path).status_code for _ in range(4)]
    assert len(served) <= 2
    if served:
        assert statuses == [201, 201, 429, 429]


def test_with_the_route_table_a_request_the_router_refuses_spends_only_the_default() -> None:
    served: list[str] = []
    with make_client(served, share_routes=True) as client:
        wrong_method = [client.get("/v1/orders").status_code for _ in range(4)]
        allowed = client.post("/v1/orders")
    assert wrong_method == [405] * 4
    assert allowed.status_code == 201
    assert allowed.headers["RateLimit"].startswith("limit=2, remaining=1")
