"""A Redis cache store that degrades to a miss on any Redis failure.

The cache is an optimisation, never a dependency: every operation has a short deadline, and an
error or timeout is logged, counted, and answered as a miss (or a no-op for writes), so requests
fall through to the source of truth. redis-py drops a connection that failed or was cut off by our
deadline and dials a new one on the next command, so the store heals by itself when Redis returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.cache.base import CacheMetrics

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
        self._target = target
        self._op_timeout_s = op_timeout_s
        self._key_prefix = key_prefix
        self._metrics = metrics
        self._logger = structlog.get_logger(__name__)
        self._failing_since: float | None = None
        self._next_log_at = 0.0
        self._suppressed = 0
        self._get_indirect = client.register_script(_GET_INDIRECT)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        op_timeout_s: float = 0.1,
        key_prefix: str = "",
        metrics: CacheMetrics | None = None,
        max_connections: int | None = None,
    ) -> RedisCacheStore:
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported cache URL scheme {scheme!r}; use redis:// or rediss://")
        client = Redis.from_url(
            url,
            socket_timeout=op_timeout_s,
            socket_connect_timeout=op_timeout_s,
            # One immediate retry lets a pooled connection that died with a restarted server be
            # replaced within the same call; more retries would only stretch the deadline.
            retry=Retry(NoBackoff(), retries=1),
            max_connections=max_connections,
        )
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
            lambda: self._get_indirect(keys=[p + pointer_key], args=[p + prefix, suffix]),
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

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        prefixed = [self._key_prefix + key for key in keys]
        await self._run("delete", ",".join(keys), lambda: self._client.delete(*prefixed))

    async def ping(self) -> bool:
        return bool(await self._run("ping", "", self._client.ping))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _run(self, operation: str, key: str, command: Callable[[], Awaitable[T]]) -> T | None:
        try:
            # socket timeouts alone do not bound a call that has to connect first and retry;
            # this deadline bounds the whole operation.
            async with asyncio.timeout(self._op_timeout_s):
                result = await command()
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._record_failure(operation, key, exc)
            return None
        if self._failing_since is not None:
            self._record_recovery()
        return result

    def _record_failure(self, operation: str, key: str, exc: Exception) -> None:
        if self._metrics is not None:
            self._metrics.cache_store_error(self.backend, operation)
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now < self._next_log_at:
            self._suppressed += 1
            return
        self._logger.warning(
            "cache_store_error",
            backend=self.backend,
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

    def _record_recovery(self) -> None:
        assert self._failing_since is not None
        self._logger.info(
            "cache_store_recovered",
            backend=self.backend,
            target=self._target,
            outage_s=round(time.monotonic() - self._failing_since, 3),
        )
        self._failing_since = None
        self._next_log_at = 0.0
        self._suppressed = 0
