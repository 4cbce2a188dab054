"""Counting hits against a policy: a thin layer over `limits`' async strategies and storages.

The default strategy is the sliding-window counter: the fixed window lets a client spend two
budgets back to back across a window edge, and the moving window costs O(limit) per hit in Redis.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import redis.asyncio
import structlog
from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

StrategyName = Literal["fixed-window", "sliding-window-counter", "moving-window"]
STRATEGIES: dict[str, Callable[[Storage], RateLimiter]] = {
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "moving-window": MovingWindowRateLimiter,
}

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    window_s: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s < 1:
            raise ValueError(f"a rate limit needs limit >= 1 and window_s >= 1, got {self}")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int
    # True when the storage failed and the request was let through uncounted: the numbers above
    # are then the policy's, not a count, and must not be advertised to the client.
    degraded: bool = False


@dataclass(frozen=True, slots=True)
class LimiterUnavailable:
    """The storage failed and the limiter fails closed: the request must be refused."""

    error: str


class Limiter:
    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        strategy: StrategyName = "sliding-window-counter",
        fail_open: bool = True,
        timeout_s: float = 0.25,
        key_prefix: str = "ratelimit",
        on_storage_error: Callable[[Exception], None] | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown rate-limit strategy {strategy!r}; use one of {list(STRATEGIES)}"
            )
        self.strategy_name = strategy
        self.fail_open = fail_open
        self.timeout_s = timeout_s
        self.on_storage_error = on_storage_error
        # Read by the metrics layer: failed storage calls (one per policy checked), whether they
        # failed open or closed.
        self.storage_errors = 0
        self._healthy = True
        self._failures_in_outage = 0
        self._scheme, self._storage, self._pool = _storage(storage_uri, key_prefix, timeout_s)
        self._strategy: RateLimiter = STRATEGIES[strategy](self._storage)

    async def hit(self, policy: RateLimit, key: str) -> Decision | LimiterUnavailable:
        item = RateLimitItemPerSecond(policy.limit, policy.window_s)
        try:
            if self._pool is None:
                # In-memory counting does no I/O: a deadline would only add overhead.
                allowed = await self._strategy.hit(item, key)
                stats = await self._strategy.get_window_stats(item, key)
            else:
                # One deadline for both round trips: a slow or dead Redis costs a request at
                # most this long, never a hang.
                async with asyncio.timeout(self.timeout_s):
                    allowed = await self._strategy.hit(item, key)
                    stats = await self._strategy.get_window_stats(item, key)
        except (StorageError, TimeoutError, OSError) as exc:
            return self._failed(policy, exc)
        self._recovered()
        # `limits`' reset time is the next moment the count drops. For the sliding-window counter
        # that can come before a slot is actually free; a client retrying then gets a fresh answer.
        reset_after_s = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            # Retry-After: 0 would invite an immediate retry that is refused again.
            reset_after_s = max(1, reset_after_s)
        return Decision(allowed, policy.limit, max(0, stats.remaining), reset_after_s)

    async def storage_ready(self) -> bool:
        """Whether the counting storage answers now (one PING for Redis); for /readyz."""
        if self._pool is None:
            return True
        try:
            async with asyncio.timeout(self.timeout_s):
                return bool(await self._storage.check())
        except (StorageError, TimeoutError, OSError):
            return False

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    def _failed(self, policy: RateLimit, exc: Exception) -> Decision | LimiterUnavailable:
        if isinstance(exc, StorageError):  # `limits` wraps the driver's error; report that one
            exc = exc.storage_error
        self.storage_errors += 1
        self._failures_in_outage += 1
        if self.on_storage_error is not None:
            self.on_storage_error(exc)
        # Logged once per outage, not per request: with Redis down every request fails, and the
        # counter above already says how many.
        if self._healthy:
            self._healthy = False
            log.error(
                "rate_limiter_storage_failed",
                storage=self._scheme,
                strategy=self.strategy_name,
                fail_open=self.fail_open,
                error=repr(exc),
            )
        if self.fail_open:
            return Decision(True, policy.limit, policy.limit, policy.window_s, degraded=True)
        return LimiterUnavailable(error=type(exc).__name__)

    def _recovered(self) -> None:
        if not self._healthy:
            self._healthy = True
            log.info(
                "rate_limiter_storage_recovered",
                storage=self._scheme,
                failed_calls=self._failures_in_outage,
            )
            self._failures_in_outage = 0


def _storage(
    uri: str, key_prefix: str, timeout_s: float
) -> tuple[str, Storage, redis.asyncio.ConnectionPool | None]:
    uri = uri.removeprefix("async+")
    scheme = urlsplit(uri).scheme
    if scheme == "memory":
        return scheme, _from_string("async+memory://", wrap_exceptions=True), None
    if scheme in ("redis", "rediss"):
        # Our own pool, so that connect and read time out quickly and a failed call is not retried
        # behind our deadline; the pool reconnects on the next call once Redis is back.
        pool = redis.asyncio.ConnectionPool.from_url(
            uri,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        storage = _from_string(
            f"async+{uri}",
            wrap_exceptions=True,
            implementation="redispy",
            connection_pool=pool,
            key_prefix=key_prefix,
        )
        return scheme, storage, pool
    raise ValueError(
        f"unsupported rate-limit storage {scheme!r}: use memory://, redis:// or rediss://"
    )


def _from_string(uri: str, **options: Any) -> Storage:
    storage = storage_from_string(uri, **options)
    assert isinstance(storage, Storage)
    return storage
