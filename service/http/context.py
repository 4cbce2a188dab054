"""What handlers need, built once by the composition root and kept on app.state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request

from service.breaker import AsyncCircuitBreaker
from service.cache.versioned import VersionedCache
from service.config import Settings
from service.http.pickup_guard import PickupGuard
from service.ports import PickupRepository
from service.usecases.recommend import Recommender

# A readiness check returns (status, detail); status is "ok", "degraded" or "down".
ReadinessCheck = Callable[[], Awaitable[tuple[str, dict[str, Any]]]]


@dataclass
class AppContext:
    settings: Settings
    repo: PickupRepository
    clock: Callable[[], datetime]
    staff_keys: list[tuple[str | None, str]]
    admin_token: str | None
    readiness: dict[str, ReadinessCheck]
    cache: VersionedCache
    recommender: Recommender | None = None
    breakers: list[AsyncCircuitBreaker] = field(default_factory=list)
    pickup_guard: PickupGuard | None = None  # set by the composition root, which owns the limiter
    # The JSON encoder of cached reads: orjson, or the lab's stdlib baseline (RESPONSE_ENCODER).
    encode: Callable[[Any], bytes] = orjson.dumps


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
