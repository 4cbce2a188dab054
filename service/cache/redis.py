"""A Redis cache store that degrades to a miss on any Redis failure.

The cache is an optimisation, never a dependency: every operation has a short deadline, and an
error or timeout is logged, counted, and answered as a miss (or a no-op for writes), so requests
fall through to the source of truth. redis-py drops a connection that failed or was cut off by our
deadline and dials a new one on the next command, so the store heals by itself when Redis returns.

Connecting has its own, longer deadline. A TLS connection to a managed Redis in another region
(Upstash) costs TCP + TLS + AUTH, several round trips, where a GET costs one: under the per-op
deadline alone it would never connect. So while an operation has to dial a connection, its
deadline is the connect timeout, and once connected the command gets a full per-op deadline.
Cutting a command off mid-reply makes redis-py drop its connection, so the per-op deadline is
never spent on dialling. The price: a request that needs a new connection to a Redis whose
connects hang waits up to the connect timeout (a refused connect still fails at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, Connection, ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.cache.base import CacheMetrics
from service.cache.script import DirectScript

T = TypeVar("T")

# Under load a dead Redis fails thousands of operations a second; one line per interval (with the
# number suppressed) keeps the log readable and cheap.
_LOG_INTERVAL_S = 5.0

# One round trip for a versioned read: the version, then the value stored under it. The value's
# key is built inside the script, so it is not declared in KEYS: fine on one Redis server (and
# on replicas of it), not on Redis Cluster, which this store does not support.
_GET_INDIRECT = """
local pointer = redis.call('GET', KEYS[1])
if not pointer then return {false, false} end
return {pointer, redis.call('GET', ARGV[1] .. pointer .. ARGV[2])}
"""


# The deadline of the operation running in this task, so a connection dialled on its behalf can
# move it: connecting gets the connect timeout, the command afterwards a full per-op deadline.
_op_deadline: ContextVar[asyncio.Timeout | None] = ContextVar("redis_op_deadline", default=None)


def connecting_apart(
    base: type[AbstractConnection], *, connect_timeout_s: float, op_timeout_s: float
) -> type[AbstractConnection]:
    """`base` whose connect() runs under `connect_timeout_s` instead of the deadline of the
    operation that needed the connection, which starts afresh once connected."""

    class ConnectingApart(base):  # type: ignore[valid-type,misc]
        async def connect(self) -> None:
            if self.is_connected:
                return
            deadline = _op_deadline.get()
            if deadline is None:
                async with asyncio.timeout(connect_timeout_s):
                    await super().connect()
                return
            loop = asyncio.get_running_loop()
            deadline.reschedule(loop.time() + connect_timeout_s)
            try:
                await super().connect()
            finally:
                if not deadline.expired():  # a connect that timed out ends the operation
                    deadline.reschedule(loop.time() + op_timeout_s)

    ConnectingApart.__name__ = f"ConnectingApart{base.__name__}"
    return ConnectingApart


def describe_redis_url(url: str) -> str:
    """The URL without credentials, safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 6379
    return f"{parts.scheme}://{host}:{port}{parts.path}"


class RedisCacheStore:
    backend = "redis"

    def __init__(
        self,
        client: Redis,
        *,
        target: str,
        op_timeout_s: float = 0.1,
        key_prefix: str = "",
        metrics: CacheMetrics | None = None,
    ) -> None:
        if op_timeout_s <= 0:
            raise ValueError("op_timeout_s must be positive")
        self._client = client
        self._op_timeout_s = op_timeout_s
        self._key_prefix = key_prefix
        self._outage = _OutageReport(self.backend, target, metrics)
        # The hot read's one script runs outside redis-py's command machinery (script.py).
        self._get_indirect = DirectScript(client.connection_pool, _GET_INDIRECT, retries=1)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        op_timeout_s: float = 0.1,
        connect_timeout_s: float | None = None,
        key_prefix: str = "",
        metrics: CacheMetrics | None = None,
        max_connections: int | None = None,
    ) -> RedisCacheStore:
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported cache URL scheme {scheme!r}; use redis:// or rediss://")
        # Without its own connect timeout, connecting gets as long as one operation.
        connect_s = connect_timeout_s or op_timeout_s
        options: dict[str, Any] = dict(parse_url(url))
        base = options.pop("connection_class", Connection)
        pool = ConnectionPool(
            connection_class=connecting_apart(
                base, connect_timeout_s=connect_s, op_timeout_s=op_timeout_s
            ),
            # Reads during the connection handshake (AUTH, HELLO) belong to connecting; the
            # commands themselves are bounded by the per-op deadline in `_run`.
            socket_timeout=connect_s,
            socket_connect_timeout=connect_s,
            # One immediate retry lets a pooled connection that died with a restarted server be
            # replaced within the same call; more retries would only stretch the deadline.
            retry=Retry(NoBackoff(), retries=1),
            max_connections=max_connections,
            **options,
        )
        client = Redis.from_pool(pool)
        return cls(
            client,
            target=describe_redis_url(url),
            op_timeout_s=op_timeout_s,
            key_prefix=key_prefix,
            metrics=metrics,
        )

    async def get(self, key: str) -> bytes | None:
        value = await self._run("get", key, lambda: self._client.get(self._key_prefix + key))
        # The client does not decode responses, so a value is always bytes.
        return value if isinstance(value, bytes) else None

    async def get_indirect(
        self, pointer_key: str, prefix: str, suffix: str
    ) -> tuple[bytes | None, bytes | None]:
        p = self._key_prefix
        found = await self._run(
            "get",
            pointer_key,
            lambda: self._get_indirect([p + pointer_key], [p + prefix, suffix]),
        )
        if not isinstance(found, list) or len(found) != 2:
            return None, None
        pointer, value = found
        return (
            pointer if isinstance(pointer, bytes) else None,
            value if isinstance(value, bytes) else None,
        )

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        ttl_ms = max(1, round(ttl_s * 1000))
        await self._run(
            "set", key, lambda: self._client.set(self._key_prefix + key, value, px=ttl_ms)
        )

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        if ttl_s <= 0:
            return False
        ttl_ms = max(1, round(ttl_s * 1000))
        done = await self._run(
            "add", key, lambda: self._client.set(self._key_prefix + key, value, px=ttl_ms, nx=True)
        )
        return bool(done)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        prefixed = [self._key_prefix + key for key in keys]
        await self._run("delete", ",".join(keys), lambda: self._client.delete(*prefixed))

    async def ping(self) -> bool:
        return bool(await self._run("ping", "", self._client.ping))

    async def aclose(self) -> None:
        await self._get_indirect.aclose()
        await self._client.aclose()

    async def _run(self, operation: str, key: str, command: Callable[[], Awaitable[T]]) -> T | None:
        try:
            # socket timeouts alone do not bound a call that has to connect first and retry;
            # this deadline bounds the whole operation.
            async with asyncio.timeout(self._op_timeout_s) as deadline:
                token = _op_deadline.set(deadline)
                try:
                    result = await command()
                finally:
                    _op_deadline.reset(token)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._outage.failed(operation, key, exc)
            return None
        if self._outage.failing_since is not None:
            self._outage.recovered()
        return result


class _OutageReport:
    """Counts every failed operation, and logs an outage's start (then one line per interval,
    with the number suppressed) and its end."""

    def __init__(self, backend: str, target: str, metrics: CacheMetrics | None) -> None:
        self._backend = backend
        self._target = target
        self._metrics = metrics
        self._logger = structlog.get_logger(__name__)
        self.failing_since: float | None = None
        self._next_log_at = 0.0
        self._suppressed = 0

    def failed(self, operation: str, key: str, exc: Exception) -> None:
        if self._metrics is not None:
            self._metrics.cache_store_error(self._backend, operation)
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if now < self._next_log_at:
            self._suppressed += 1
            return
        self._logger.warning(
            "cache_store_error",
            backend=self._backend,
            target=self._target,
            operation=operation,
            key=key,
            error_type=type(exc).__name__,
            error=str(exc),
            fallback="miss",
            suppressed_since_last_log=self._suppressed,
        )
        self._suppressed = 0
        self._next_log_at = now + _LOG_INTERVAL_S

    def recovered(self) -> None:
        assert self.failing_since is not None
        self._logger.info(
            "cache_store_recovered",
            backend=self._backend,
            target=self._target,
            outage_s=round(time.monotonic() - self.failing_since, 3),
        )
        self.failing_since = None
        self._next_log_at = 0.0
        self._suppressed = 0
