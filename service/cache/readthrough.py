"""Read-through caching with single-flight loads and race-free invalidation.

Single flight: the first miss on a key starts one load task; later misses on the same key await
that task instead of calling the loader again. The load runs in its own task, shielded from the
callers, so one caller giving up does not cancel the load for the others.

Invalidation: a load that read the source before an invalidation may finish after it, and writing
its value back would resurrect stale data for a full TTL. `invalidate` therefore
1. detaches the key's in-flight load: a load writes only while it is still the key's registered
   load, so a detached one never writes, and later callers start a fresh load instead of joining;
2. waits for any write that had already begun (a network SET may still be travelling), and only
3. then deletes the key, so the delete always lands after every earlier write.
Registration is the staleness marker, so no per-key state outlives a load. The guarantee covers
loads in this process: a worker process cannot see another worker's in-flight loads.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from service.cache.base import CacheMetrics, CacheResult, CacheStore

Loader = Callable[[], Awaitable[bytes]]


class ReadThroughCache:
    def __init__(
        self,
        store: CacheStore,
        *,
        ttl_s: float,
        jitter_ratio: float = 0.1,
        enabled: bool = True,
        metrics: CacheMetrics | None = None,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        if not 0 <= jitter_ratio < 1:
            raise ValueError("jitter_ratio must be in [0, 1)")
        self._store = store
        self._ttl_s = ttl_s
        self._jitter_ratio = jitter_ratio
        self._enabled = enabled
        self._metrics = metrics
        self._random_fraction = random_fraction
        self._loads: dict[str, asyncio.Task[bytes]] = {}
        # Strong references: a load detached by `invalidate` may have no other owner left.
        self._running: set[asyncio.Task[bytes]] = set()
        self._writes: dict[str, set[asyncio.Future[None]]] = {}

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def get_or_load(
        self, cache_name: str, key: str, loader: Loader, *, ttl_s: float | None = None
    ) -> bytes:
        if not self._enabled:
            return await loader()
        load = self._loads.get(key)
        if load is None:
            cached = await self._store.get(key)
            if cached is not None:
                self._count(cache_name, "hit")
                return cached
            # Another caller may have started the load while we waited on the store.
            load = self._loads.get(key) or self._start_load(key, loader, ttl_s)
        try:
            value = await asyncio.shield(load)
        except Exception:
            self._count(cache_name, "error")
            raise
        self._count(cache_name, "miss")
        return value

    def record_hit(self, cache_name: str) -> None:
        """Count a hit the caller read from the store itself (VersionedCache.lookup)."""
        self._count(cache_name, "hit")

    async def invalidate(self, *keys: str) -> None:
        pending: list[asyncio.Future[None]] = []
        for key in keys:
            self._loads.pop(key, None)
            pending.extend(self._writes.get(key, ()))
        if pending:
            await asyncio.wait(pending)
        await self._store.delete(*keys)

    def _start_load(self, key: str, loader: Loader, ttl_s: float | None) -> asyncio.Task[bytes]:
        # Registered before the task first runs, so the task always finds itself in `_loads`
        # unless an invalidation detached it.
        load = asyncio.create_task(self._load(key, loader, ttl_s))
        self._loads[key] = load
        self._running.add(load)
        load.add_done_callback(self._finished)
        return load

    async def _load(self, key: str, loader: Loader, ttl_s: float | None) -> bytes:
        me = asyncio.current_task()
        try:
            value = await loader()
            # Checked and registered with no await in between, so `invalidate` either sees this
            # write (and waits for it) or has already detached this load.
            if self._loads.get(key) is me:
                await self._write(key, value, self._jittered(ttl_s))
            return value
        finally:
            if self._loads.get(key) is me:
                del self._loads[key]

    async def _write(self, key: str, value: bytes, ttl_s: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        writes = self._writes.setdefault(key, set())
        writes.add(done)
        try:
            await self._store.set(key, value, ttl_s)
        finally:
            done.set_result(None)
            writes.discard(done)
            if not writes and self._writes.get(key) is writes:
                del self._writes[key]

    def _jittered(self, ttl_s: float | None) -> float:
        # Jitter only shortens the TTL, so entries filled together expire apart while the TTL
        # stays an upper bound on how stale a cached value can be.
        base = self._ttl_s if ttl_s is None else ttl_s
        return base * (1 - self._jitter_ratio * self._random_fraction())

    def _finished(self, load: asyncio.Task[bytes]) -> None:
        self._running.discard(load)
        # If every caller was cancelled nobody awaited the task; retrieve its outcome so asyncio
        # does not report an unobserved exception (callers that stayed have seen it already).
        if not load.cancelled():
            load.exception()

    def _count(self, cache_name: str, result: CacheResult) -> None:
        if self._metrics is not None:
            self._metrics.cache_request(cache_name, result)
