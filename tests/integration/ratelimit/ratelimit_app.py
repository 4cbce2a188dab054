"""The smallest app the multi-process test can serve with uvicorn.

uvicorn imports the factory by name in a fresh process, so the test hands the settings over through
that process's environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.ratelimit import ClientIdentity, Limiter, RateLimit, RateLimitMiddleware


async def menu(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app() -> Starlette:
    limiter = Limiter(
        os.environ["RATELIMIT_STORAGE_URI"],
        key_prefix=os.environ["RATELIMIT_KEY_PREFIX"],
        fail_open=False,  # a storage problem must fail the test, not pass it silently
        timeout_s=2.0,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await limiter.aclose()

    return Starlette(
        routes=[Route("/v1/menu", menu), Route("/healthz", healthz)],
        middleware=[
            Middleware(
                RateLimitMiddleware,
                limiter=limiter,
                default_policy=RateLimit(int(os.environ["RATELIMIT_LIMIT"]), 60),
                identity=ClientIdentity(trust_proxy_hops=1),
            )
        ],
        lifespan=lifespan,
    )
