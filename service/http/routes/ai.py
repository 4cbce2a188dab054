from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.http import parsing, presenters
from service.http import schemas as s
from service.http.auth import principal
from service.http.context import context
from service.http.endpoint import Endpoint
from service.http.responses import JSONResponse
from service.usecases import recommend
from service.usecases.access import require_admin


async def recommendations(request: Request) -> Response:
    store_id = parsing.path_id(request, "store_id", "store")
    data, _ = await parsing.body(request, s.RecommendationIn)
    ctx = context(request)
    found = await recommend.recommend(
        ctx.repo,
        ctx.recommender,
        store_id,
        preferences=data.preferences,
        budget_cents=data.budget_cents,
        party_size=data.party_size,
    )
    return JSONResponse(presenters.recommendation(found))


async def breakers(request: Request) -> Response:
    require_admin(principal(request))
    items = [presenters.breaker(b) for b in context(request).breakers]
    return JSONResponse(presenters.page(items, None))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/stores/{store_id}/recommendations",
        recommendations,
        "Menu recommendations (AI, or a deterministic fallback)",
        "ai",
        s.RecommendationOut,
        body=s.RecommendationIn,
        errors=(409, 429),
        rate_limit="ai",
        invalidates=(),
    ),
    Endpoint(
        "GET",
        "/v1/admin/breakers",
        breakers,
        "Circuit breaker states",
        "admin",
        s.BreakerList,
        auth="admin",
    ),
]
