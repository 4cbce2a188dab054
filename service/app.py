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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.ai import OpenAIRecommender
from service.breaker import AsyncCircuitBreaker
from service.cache import MemoryCacheStore, ReadThroughCache, RedisCacheStore
from service.cache.base import CacheStore
from service.cache.versioned import VersionedCache
from service.config import Settings, load_settings
from service.domain.errors import PickupError
from service.http import errors, openapi
from service.http.context import AppContext, ReadinessCheck
from service.http.endpoint import Budget, Endpoint, Handler
from service.http.middleware.body_limit import BodyLimitMiddleware
from service.http.middleware.compression import GZipWhenAcceptedMiddleware
from service.http.middleware.security_headers import SecurityHeadersMiddleware
from service.http.responses import JSONResponse
from service.http.routes import ai, health, orders, stores
from service.observability import Metrics, RequestContextMiddleware, configure_logging
from service.observability.build import build_commit
from service.observability.instrumented import instrument
from service.observability.middleware import metrics_endpoint
from service.ratelimit import (
    ClientIdentity,
    KeyFunc,
    Limiter,
    RateLimit,
    RateLimitMiddleware,
    RoutePolicy,
    by_client,
    by_path_param,
)
from service.repositories.base import PickupRepository
from service.repositories.json_store import JsonFileRepository
from service.repositories.postgres import PostgresRepository
from service.usecases.seed import demo_dataset

log = structlog.get_logger("service")

ENDPOINTS: list[Endpoint] = [
    *health.ENDPOINTS,
    *stores.ENDPOINTS,
    *orders.ENDPOINTS,
    *ai.ENDPOINTS,
]
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Order-Token",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = [
    "Location",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "X-Request-ID",
    "Idempotent-Replayed",
]
Closer = Callable[[], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def open_repository(settings: Settings) -> PickupRepository:
    if settings.data_backend == "json":
        return await JsonFileRepository.open(settings.json_data_path)
    assert settings.database_url is not None  # Settings refuses postgres without it
    repo = await PostgresRepository.open(
        settings.database_url.get_secret_value(),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        query_profile=settings.query_profile,
    )
    if settings.query_profile == "naive":
        log.warning("naive_query_profile", detail="lab baseline: deliberately slow queries")
    return repo


def build_cache_store(settings: Settings, metrics: Metrics | None) -> CacheStore:
    if settings.redis_url is None:
        return MemoryCacheStore(settings.cache_max_entries)
    return RedisCacheStore.from_url(
        settings.redis_url.get_secret_value(),
        op_timeout_s=settings.cache_op_timeout_ms / 1000,
        connect_timeout_s=settings.cache_connect_timeout_ms / 1000,
        key_prefix="pickup:cache:",
        metrics=metrics,
    )


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


def build_limiter(settings: Settings, metrics: Metrics | None) -> Limiter:
    return Limiter(
        settings.redis_url.get_secret_value() if settings.redis_url else "memory://",
        strategy=settings.rate_limit_strategy,
        fail_open=settings.rate_limit_fail_open,
        on_storage_error=metrics.rate_limit_storage_error if metrics else None,
    )


def middleware_stack(
    settings: Settings,
    limiter: Limiter,
    metrics: Metrics | None,
    endpoints: list[Endpoint],
    routes: list[BaseRoute],
) -> list[Middleware]:
    """Outermost first. Request context sees every response (429s and 413s included); security
    headers and CORS wrap the limiter so refusals carry them; preflights are answered by CORS
    before they could be counted. Each layer can be switched off for the lab's A/B runs."""
    stack = []
    if metrics is not None:
        stack.append(
            Middleware(RequestContextMiddleware, metrics=metrics, access_log=settings.access_log)
        )
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
    if settings.rate_limit_enabled:
        stack.append(rate_limit_middleware(settings, limiter, endpoints, routes))
    if settings.compression_enabled:
        stack.append(
            Middleware(
                GZipWhenAcceptedMiddleware,
                minimum_size=settings.compression_min_bytes,
                compresslevel=settings.compression_level,
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


def rate_limit_budgets(settings: Settings) -> dict[Budget, tuple[RateLimit, KeyFunc]]:
    """The named budgets endpoints refer to (Endpoint.rate_limit), beyond the default one."""
    window_s = settings.rate_limit_window_ms // 1000
    return {
        "orders": (RateLimit(settings.rate_limit_orders_max, window_s), by_client),
        "ai": (RateLimit(settings.rate_limit_ai_max, window_s), by_client),
        # Per order, whoever asks: six-digit codes must not be guessable by retrying.
        "pickup-per-order": (
            RateLimit(settings.pickup_code_attempts_max, window_s),
            by_path_param("order_id"),
        ),
    }


def rate_limit_middleware(
    settings: Settings, limiter: Limiter, endpoints: list[Endpoint], routes: list[BaseRoute]
) -> Middleware:
    """The limiter's route table is the endpoint list, and the route a request is charged for is
    decided by the app's own routes (the very objects the router dispatches with), so no
    spelling the router accepts can reach an endpoint without spending that endpoint's budget."""
    budgets = rate_limit_budgets(settings)
    return Middleware(
        RateLimitMiddleware,
        limiter=limiter,
        default_policy=RateLimit(settings.rate_limit_max, settings.rate_limit_window_ms // 1000),
        route_policies=[
            RoutePolicy(ep.method, ep.path, *budgets[ep.rate_limit])
            for ep in endpoints
            if ep.rate_limit in budgets
        ],
        routes=routes,
        exempt_paths=[ep.path for ep in endpoints if ep.rate_limit == "exempt"],
        identity=ClientIdentity(
            trust_proxy_hops=settings.trust_proxy,
            trusted_proxies=settings.trusted_proxy_networks(),
            ipv6_prefix=settings.ipv6_prefix,
        ),
    )


def routes_by_path(endpoints: list[Endpoint]) -> list[BaseRoute]:
    """One Route per path carrying all its methods, so a 405 lists every method the path
    serves in Allow (a Route per method would list only the first one matched). Each handler
    is followed by the cache invalidation its endpoint declares (Endpoint.serve)."""
    by_path: dict[str, dict[str, Handler]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, {})[ep.method] = ep.serve()

    def dispatcher(handlers: dict[str, Handler]) -> Handler:
        async def dispatch(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)

        return dispatch

    return [Route(path, dispatcher(h), methods=list(h)) for path, h in by_path.items()]


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now
) -> Starlette:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    metrics = (
        Metrics(multiprocess_dir=settings.prometheus_multiproc_dir)
        if settings.metrics_enabled
        else None
    )
    if metrics is not None:
        metrics.set_build_info(version("pickup-service"), build_commit(settings.build_commit))
    limiter = build_limiter(settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        closers: list[Closer] = [limiter.aclose]
        try:
            app.state.ctx = await build_context(settings, clock, metrics, closers)
            yield
        finally:
            for close in reversed(closers):
                await close()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    endpoints = [
        *ENDPOINTS,
        Endpoint("GET", "/openapi.json", openapi_json, "This document", "meta", None),
    ]
    if metrics is not None:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        endpoints.append(
            Endpoint(
                "GET",
                "/metrics",
                metrics_endpoint(metrics, token),
                "Prometheus metrics (text format; METRICS_TOKEN as bearer when set)",
                "meta",
                None,
                auth="metrics" if token else "public",
                errors=(401,),
                rate_limit="exempt",
            )
        )
    spec = openapi.document(endpoints, version=version("pickup-service"))
    routes = routes_by_path(endpoints)
    return Starlette(
        routes=routes,
        middleware=middleware_stack(settings, limiter, metrics, endpoints, routes),
        exception_handlers={
            ClientDisconnect: errors.client_disconnected,
            PickupError: errors.pickup_error,
            HTTPException: errors.http_error,
            Exception: errors.unexpected_error,
        },
        lifespan=lifespan,
    )


async def build_context(
    settings: Settings,
    clock: Callable[[], datetime],
    metrics: Metrics | None,
    closers: list[Closer],
) -> AppContext:
    repo = await open_repository(settings)
    closers.append(repo.aclose)
    if settings.seed_demo_data and await repo.is_empty():
        await repo.import_dataset(demo_dataset())
        log.info("demo_data_loaded", backend=repo.backend)
    if metrics is not None:
        if isinstance(repo, PostgresRepository):
            metrics.track_db_pool(repo.pool_stats)
        repo = instrument(repo, metrics)

    store = build_cache_store(settings, metrics)
    closers.append(store.aclose)
    cache = VersionedCache(
        store,
        ReadThroughCache(
            store, ttl_s=settings.cache_ttl_seconds, enabled=settings.cache_enabled, metrics=metrics
        ),
    )

    breaker = AsyncCircuitBreaker(
        "openai", fail_max=settings.breaker_fail_max, reset_timeout=settings.breaker_reset_timeout_s
    )
    if metrics is not None:
        metrics.set_circuit_state(breaker.name, "closed")
        breaker.add_listener(metrics.circuit_state_changed)
    recommender = build_recommender(settings, breaker)
    if recommender is not None:
        closers.append(recommender.aclose)

    profile = getattr(repo, "query_profile", None)

    async def database() -> tuple[str, dict[str, Any]]:
        await repo.ping()
        detail: dict[str, Any] = {"backend": repo.backend}
        if profile is not None:
            # Said out loud so a lab baseline can never pass for production unnoticed.
            detail["query_profile"] = profile
        return "ok", detail

    async def cache_check() -> tuple[str, dict[str, Any]]:
        if not settings.cache_enabled:
            return "ok", {"mode": "disabled"}
        kind = "redis" if settings.redis_url else "memory"
        # Without the cache every read goes to the backend: slower, still correct, so degraded.
        return ("ok" if await store.ping() else "degraded"), {"store": kind}

    async def ai_upstream() -> tuple[str, dict[str, Any]]:
        if recommender is None:
            return "ok", {"mode": "fallback only (no OPENAI_API_KEY)"}
        state = breaker.status().state
        # An open breaker degrades one feature; the fallback still answers, so stay ready.
        return ("degraded" if state != "closed" else "ok"), {"breaker": state}

    readiness: dict[str, ReadinessCheck] = {
        "database": database,
        "cache": cache_check,
        "ai": ai_upstream,
    }
    if metrics is not None:
        readiness = metrics.record_readiness(readiness, timeout_s=health.READINESS_TIMEOUT_S)

    return AppContext(
        settings=settings,
        repo=repo,
        clock=clock,
        staff_keys=settings.staff_keys(),
        admin_token=settings.admin_token.get_secret_value() if settings.admin_token else None,
        readiness=readiness,
        cache=cache,
        recommender=recommender,
        breakers=[breaker],
    )
