"""The HTTP composition root: routes, middleware and lifespan. Adapters come from
service.bootstrap, which app, cli and devsetup share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib.metadata import version

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from service.bootstrap import Closer, build_context, build_limiter
from service.config import Settings, load_settings
from service.domain.errors import PickupError
from service.http import errors, openapi
from service.http.endpoint import Budget, Endpoint
from service.http.middleware.body_limit import BodyLimitMiddleware
from service.http.middleware.compression import GZipWhenAcceptedMiddleware
from service.http.middleware.security_headers import SecurityHeadersMiddleware
from service.http.middleware.unexpected_error import UnexpectedErrorMiddleware
from service.http.pickup_guard import PickupGuard
from service.http.responses import JSONResponse
from service.http.routes import ai, docs, health, orders, stores
from service.http.routing import routes_by_path
from service.observability import Metrics, RequestContextMiddleware, accesslog, configure_logging
from service.observability.build import build_commit
from service.observability.middleware import metrics_endpoint
from service.ratelimit import (
    ClientIdentity,
    KeyFunc,
    Limiter,
    RateLimit,
    RateLimitMiddleware,
    RoutePolicy,
    by_client,
)

log = structlog.get_logger("service")

ENDPOINTS: list[Endpoint] = [
    *health.ENDPOINTS,
    *stores.ENDPOINTS,
    *orders.ENDPOINTS,
    *ai.ENDPOINTS,
    *docs.ENDPOINTS,
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


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    # Inside the layers that add headers, so a 500 carries them like any other answer.
    stack.append(Middleware(UnexpectedErrorMiddleware, handler=errors.unexpected_error))
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
        # Pickup-code attempts per order are counted by the hand-over handler itself
        # (http/pickup_guard.py), after authentication and validation; while Redis cannot
        # count them, the process counts them itself.
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
            app.state.ctx = await build_context(settings, clock, metrics, closers, limiter)
            app.state.ctx.pickup_guard = PickupGuard(
                limiter,
                RateLimit(settings.pickup_code_attempts_max, settings.rate_limit_window_ms // 1000),
            )
            yield
        finally:
            for close in reversed(closers):
                await close()
            accesslog.flush()

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
                auth="metrics" if token else "metrics-optional",
                rate_limit="exempt",
            )
        )
    spec = openapi.document(endpoints, version=version("pickup-service"))
    routes = routes_by_path(endpoints)
    app = Starlette(
        routes=routes,
        middleware=middleware_stack(settings, limiter, metrics, endpoints, routes),
        exception_handlers={
            ClientDisconnect: errors.client_disconnected,
            PickupError: errors.pickup_error,
            HTTPException: errors.http_error,
            # Only what escapes the middleware stack itself lands here (UnexpectedErrorMiddleware
            # answers everything else inside the header-adding layers).
            Exception: errors.unexpected_error,
        },
        lifespan=lifespan,
    )
    # A slash redirect builds its Location from the request's Host header, which anyone can
    # set (an open redirect / cache-poisoning vector): a path we do not serve is a plain 404.
    app.router.redirect_slashes = False
    return app
