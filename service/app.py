"""The composition root: the one place that picks concrete adapters and wires the stack."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.config import Settings, load_settings
from service.domain.errors import PickupError
from service.http import errors, openapi
from service.http.context import AppContext
from service.http.endpoint import Endpoint
from service.http.middleware.body_limit import BodyLimitMiddleware
from service.http.responses import JSONResponse
from service.http.routes import health, orders, stores
from service.repositories.base import PickupRepository
from service.repositories.json_store import JsonFileRepository
from service.usecases.seed import demo_dataset

log = structlog.get_logger("service")

ENDPOINTS: list[Endpoint] = [*health.ENDPOINTS, *stores.ENDPOINTS, *orders.ENDPOINTS]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def open_repository(settings: Settings) -> PickupRepository:
    if settings.data_backend == "json":
        return await JsonFileRepository.open(settings.json_data_path)
    raise NotImplementedError("DATA_BACKEND=postgres arrives with the PostgreSQL backend issue")


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now
) -> Starlette:
    settings = settings or load_settings()
    spec = openapi.document(ENDPOINTS, version=version("pickup-service"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        repo = await open_repository(settings)
        if settings.seed_demo_data and await repo.is_empty():
            await repo.import_dataset(demo_dataset())
            log.info("demo_data_loaded", backend=repo.backend)

        async def database() -> tuple[str, dict[str, Any]]:
            await repo.ping()
            return "ok", {"backend": repo.backend}

        app.state.ctx = AppContext(
            settings=settings,
            repo=repo,
            clock=clock,
            staff_keys=settings.staff_keys(),
            admin_token=(settings.admin_token.get_secret_value() if settings.admin_token else None),
            readiness={"database": database},
        )
        try:
            yield
        finally:
            await repo.aclose()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    routes = [Route(ep.path, ep.handler, methods=[ep.method]) for ep in ENDPOINTS]
    routes.append(Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False))
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)],
        exception_handlers={
            PickupError: errors.pickup_error,
            HTTPException: errors.http_error,
            Exception: errors.unexpected_error,
        },
        lifespan=lifespan,
    )
