"""The composition root: the one place that picks concrete adapters and wires the stack."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.ai import OpenAIRecommender
from service.breaker import AsyncCircuitBreaker
from service.config import Settings, load_settings
from service.domain.errors import PickupError
from service.http import errors, openapi
from service.http.context import AppContext
from service.http.endpoint import Endpoint
from service.http.middleware.body_limit import BodyLimitMiddleware
from service.http.middleware.security_headers import SecurityHeadersMiddleware
from service.http.responses import JSONResponse
from service.http.routes import ai, health, orders, stores
from service.ratelimit import (
    ClientIdentity,
    Limiter,
    RateLimit,
    RateLimitMiddleware,
    RoutePolicy,
    by_path_param,
)
from service.repositories.base import PickupRepository
from service.repositories.json_store import JsonFileRepository
from service.usecases.seed import demo_dataset

log = structlog.get_logger("service")

ENDPOINTS: list[Endpoint] = [
    *health.ENDPOINTS, *stores.ENDPOINTS, *orders.ENDPOINTS, *ai.ENDPOINTS,
]  # fmt: skip
CORS_REQUEST_HEADERS = [
    "Authorization", "Content-Type", "Idempotency-Key", "X-Order-Token", "X-Request-ID",
]  # fmt: skip
CORS_EXPOSED_HEADERS = [
    "Location", "RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-ID",
    "Idempotent-Replayed",
]  # fmt: skip


def utc_now() -> datetime:
    return datetime.now(UTC)


async def open_repository(settings: Settings) -> PickupRepository:
    if settings.data_backend == "json":
        return await JsonFileRepository.open(settings.json_data_path)
    raise NotImplementedError("DATA_BACKEND=postgres arrives with the PostgreSQL backend issue")


def build_recommender(settings: Settings, breaker: AsyncCircuitBreaker) -> OpenAIRecommender | None:
    if settings.openai_api_key is None:
        return None
    return OpenAIRecommender(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        timeout_s=settings.openai_timeout_ms / 1000,
        max_concurrency=settings.ai_max_concurrency,
        breaker=breaker,
    )


def build_limiter(settings: Settings) -> Limiter:
    return Limiter(
        settings.redis_url.get_secret_value() if settings.redis_url else "memory://",
        strategy=settings.rate_limit_strategy,
        fail_open=settings.rate_limit_fail_open,
    )


def middleware_stack(settings: Settings, limiter: Limiter) -> list[Middleware]:
    """Outermost first. Security headers and CORS wrap the limiter so 429s carry them too;
    preflight requests are answered by CORS before they could be counted."""
    window_s = settings.rate_limit_window_ms // 1000
    stack = []
    if settings.security_headers_enabled:
        stack.append(Middleware(SecurityHeadersMiddleware, hsts=settings.app_env == "production"))
    if settings.cors_origin_list():
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origin_list(),
                # Credentials travel in headers, never cookies, so CORS credentials stay off.
                allow_credentials=False,
                allow_methods=["GET", "POST", "PATCH"],
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_EXPOSED_HEADERS,
                max_age=600,
            )
        )
    stack.append(
        Middleware(
            RateLimitMiddleware,
            limiter=limiter,
            enabled=settings.rate_limit_enabled,
            default_policy=RateLimit(settings.rate_limit_max, window_s),
            route_policies=[
                RoutePolicy(
                    "POST", "/v1/orders", RateLimit(settings.rate_limit_orders_max, window_s)
                ),
                RoutePolicy(
                    "POST",
                    "/v1/stores/{store_id}/recommendations",
                    RateLimit(settings.rate_limit_ai_max, window_s),
                ),
                # Per order, whoever asks: six-digit codes must not be guessable by retrying.
                RoutePolicy(
                    "POST",
                    "/v1/orders/{order_id}/pickup",
                    RateLimit(settings.pickup_code_attempts_max, window_s),
                    by_path_param("order_id"),
                ),
            ],
            identity=ClientIdentity(
                trust_proxy_hops=settings.trust_proxy,
                trusted_proxies=settings.trusted_proxy_networks(),
                ipv6_prefix=settings.ipv6_prefix,
            ),
        )
    )
    stack.append(
        Middleware(
            BodyLimitMiddleware,
            max_bytes=settings.max_body_bytes,
            read_timeout_s=settings.request_body_timeout_s,
        )
    )
    return stack


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now
) -> Starlette:
    settings = settings or load_settings()
    spec = openapi.document(ENDPOINTS, version=version("pickup-service"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        repo = await open_repository(settings)
        shutdown: list[Callable[[], Awaitable[None]]] = [repo.aclose, limiter.aclose]
        if settings.seed_demo_data and await repo.is_empty():
            await repo.import_dataset(demo_dataset())
            log.info("demo_data_loaded", backend=repo.backend)

        async def database() -> tuple[str, dict[str, Any]]:
            await repo.ping()
            return "ok", {"backend": repo.backend}

        breaker = AsyncCircuitBreaker(
            "openai",
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_timeout_s,
        )
        recommender = build_recommender(settings, breaker)
        if recommender is not None:
            shutdown.append(recommender.aclose)

        async def ai_upstream() -> tuple[str, dict[str, Any]]:
            if recommender is None:
                return "ok", {"mode": "fallback only (no OPENAI_API_KEY)"}
            status = breaker.status()
            # An open breaker degrades one feature; the fallback still answers, so stay ready.
            return ("degraded" if status.state != "closed" else "ok"), {"breaker": status.state}

        app.state.ctx = AppContext(
            settings=settings,
            repo=repo,
            clock=clock,
            staff_keys=settings.staff_keys(),
            admin_token=(settings.admin_token.get_secret_value() if settings.admin_token else None),
            readiness={"database": database, "ai": ai_upstream},
            recommender=recommender,
            breakers=[breaker],
        )
        try:
            yield
        finally:
            for close in shutdown:
                await close()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    routes = [Route(ep.path, ep.handler, methods=[ep.method]) for ep in ENDPOINTS]
    routes.append(Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False))
    limiter = build_limiter(settings)
    return Starlette(
        routes=routes,
        middleware=middleware_stack(settings, limiter),
        exception_handlers={
            PickupError: errors.pickup_error,
            HTTPException: errors.http_error,
            Exception: errors.unexpected_error,
        },
        lifespan=lifespan,
    )
