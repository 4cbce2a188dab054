"""Counting hits against a policy: a thin layer over `limits`' async strategies and storages.

The default strategy is the sliding-window counter: the fixed window lets a client spend two
budgets back to back across a window edge, and the moving window costs O(limit) per hit in Redis.
It decides in one storage operation (window.py); the other two strategies use `limits` as is
(a hit, then its window stats), and only they import it (~5 MiB per worker otherwise).
"""

from __future__ import annotations

import asyncio
import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import urlsplit

import structlog

from service.ratelimit.window import MemorySlidingWindow, RedisSlidingWindow

if TYPE_CHECKING:
    import redis.asyncio
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import Storage
    from limits.aio.strategies import RateLimiter
    from limits.errors import StorageError

StrategyName = Literal["fixed-window", "sliding-window-counter", "moving-window"]
# Class names in limits.aio.strategies.
STRATEGIES: dict[str, str] = {
    "fixed-window": "FixedWindowRateLimiter",
    "sliding-window-counter": "SlidingWindowCounterRateLimiter",
    "moving-window": "MovingWindowRateLimiter",
}


def _log() -> Any:
    # Looked up when an outage starts or ends (rare), not bound at import: a logger cached on
    # first use keeps whatever configuration was active then, and these two lines must follow
    # the current one (the app's, or a test's capture).
    return structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    window_s: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s < 1:
            raise ValueError(f"a rate limit needs limit >= 1 and window_s >= 1, got {self}")


class Decision(NamedTuple):
    # A tuple, not a frozen dataclass: one is made per limited request, and a frozen
    # dataclass's __init__ (object.__setattr__ per field) cost a microsecond of the ten the
    # whole decision may take.
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
        self._scheme, uri, self._pool = _pool(storage_uri, timeout_s)
        # What a failed storage call raises; redis-py is imported only for a Redis storage.
        self._storage_errors: tuple[type[Exception], ...] = (TimeoutError, OSError)
        if self._pool is not None:
            from redis.exceptions import RedisError

            self._storage_errors = (RedisError, TimeoutError, OSError)
        self._memory_window: MemorySlidingWindow | None = None
        self._redis_window: RedisSlidingWindow | None = None
        self._strategy: RateLimiter | None = None
        if strategy != "sliding-window-counter":
            strategies = importlib.import_module("limits.aio.strategies")
            strategy_class = getattr(strategies, STRATEGIES[strategy])
            self._strategy = strategy_class(_limits_storage(uri, key_prefix, self._pool))
        elif self._pool is None:
            self._memory_window = MemorySlidingWindow()
        else:
            # `limits`' own Redis storage is not built: it loads coredis (~20 MiB per worker)
            # even when told to use redis-py, and this strategy needs only the pool.
            self._redis_window = RedisSlidingWindow(self._pool, key_prefix)
        self._items: dict[RateLimit, RateLimitItemPerSecond] = {}

    def decide_now(self, policy: RateLimit, key: str) -> Decision | None:
        """The decision when the limiter counts in this process (no I/O, so no deadline and
        nothing that can fail, and no coroutine to await); None when the count lives elsewhere
        and `hit` must be awaited."""
        if self._memory_window is None:
            return None
        counted = self._memory_window.hit_now(key, policy.limit, policy.window_s)
        return self._decision(policy, counted.allowed, counted.remaining, counted.reset_after_s)

    async def hit(self, policy: RateLimit, key: str) -> Decision | LimiterUnavailable:
        decided = self.decide_now(policy, key)
        if decided is not None:
            return decided
        if self._redis_window is not None:
            keys = self._redis_window.keys(key, policy.limit, policy.window_s)
            try:
                async with asyncio.timeout(self.timeout_s):
                    counted = await self._redis_window.hit(keys, policy.limit, policy.window_s)
            except self._storage_errors as exc:
                return self._failed(policy, exc)
            self._recovered()
            return self._decision(policy, counted.allowed, counted.remaining, counted.reset_after_s)
        return await self._hit_with_limits(policy, key)

    def _decision(
        self, policy: RateLimit, allowed: bool, remaining: int, reset_after_s: float
    ) -> Decision:
        reset = max(0, math.ceil(reset_after_s))
        # Retry-After: 0 would invite an immediate retry that is refused again.
        return Decision(
            allowed, policy.limit, max(0, remaining), reset if allowed else max(1, reset)
        )

    async def _hit_with_limits(self, policy: RateLimit, key: str) -> Decision | LimiterUnavailable:
        assert self._strategy is not None
        item = self._items.get(policy)
        if item is None:
            from limits import RateLimitItemPerSecond

            item = self._items[policy] = RateLimitItemPerSecond(policy.limit, policy.window_s)
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
        except (_storage_error(), TimeoutError, OSError) as exc:
            return self._failed(policy, exc)
        self._recovered()
        # `limits`' reset time is the next moment the count drops. For the sliding-window counter
        # that can come before a slot is actually free; a client retrying then gets a fresh answer.
        return self._decision(policy, allowed, stats.remaining, stats.reset_time - time.time())

    async def storage_ready(self) -> bool:
        """Whether the counting storage answers now (one PING for Redis); for /readyz."""
        if self._pool is None:
            return True
        from redis.asyncio import Redis

        try:
            async with asyncio.timeout(self.timeout_s):
                return bool(await Redis(connection_pool=self._pool).ping())
        except self._storage_errors:
            return False

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    def _failed(self, policy: RateLimit, exc: Exception) -> Decision | LimiterUnavailable:
        if self._strategy is not None and isinstance(exc, _storage_error()):
            exc = exc.storage_error  # `limits` wraps the driver's error; report that one
        self.storage_errors += 1
        self._failures_in_outage += 1
        if self.on_storage_error is not None:
            self.on_storage_error(exc)
        # Logged once per outage, not per request: with Redis down every request fails, and the
        # counter above already says how many.
        if self._healthy:
            self._healthy = False
            _log().error(
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
            _log().info(
                "rate_limiter_storage_recovered",
                storage=self._scheme,
                failed_calls=self._failures_in_outage,
            )
            self._failures_in_outage = 0


def _pool(uri: str, timeout_s: float) -> tuple[str, str, redis.asyncio.ConnectionPool | None]:
    uri = uri.removeprefix("async+")
    scheme = urlsplit(uri).scheme
    if scheme == "memory":
        return scheme, uri, None
    if scheme in ("redis", "rediss"):
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # Our own pool, so that connect and read time out quickly and a failed call is not retried
        # behind our deadline; the pool reconnects on the next call once Redis is back.
        pool = redis.asyncio.ConnectionPool.from_url(
            uri,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        return scheme, uri, pool
    raise ValueError(
        f"unsupported rate-limit storage {scheme!r}: use memory://, redis:// or rediss://"
    )


def _limits_storage(
    uri: str, key_prefix: str, pool: redis.asyncio.ConnectionPool | None
) -> Storage:
    if pool is None:
        return _from_string("async+memory://", wrap_exceptions=True)
    return _from_string(
        f"async+{uri}",
        wrap_exceptions=True,
        implementation="redispy",
        connection_pool=pool,
        key_prefix=key_prefix,
    )


def _from_string(uri: str, **options: Any) -> Storage:
    from limits.aio.storage import Storage
    from limits.storage import storage_from_string

    storage = storage_from_string(uri, **options)
    assert isinstance(storage, Storage)
    return storage


def _storage_error() -> type[StorageError]:
    # Only reached with a `limits` strategy, which has imported the module already.
    from limits.errors import StorageError

    return StorageError
