from __future__ import annotations

import asyncio
from asyncio import Task
from collections import Counter

import pytest

from service.cache.base import CacheResult
from service.cache.memory import MemoryCacheStore
from service.cache.readthrough import ReadThroughCache


class RecordingMetrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.store_errors: Counter[tuple[str, str]] = Counter()

    def cache_request(self, cache: str, result: CacheResult) -> None:
        self.requests[(cache, result)] += 1

    def cache_store_error(self, backend: str, operation: str) -> None:
        self.store_errors[(backend, operation)] += 1


class CountingLoader:
    """A loader that blocks until released, so tests control when a load finishes."""

    def __init__(self, value: bytes) -> None:
        self.value = value
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> bytes:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return self.value


class GatedWriteStore(MemoryCacheStore):
    """A store whose writes stall until released, like a SET still crossing the network."""

    def __init__(self) -> None:
        super().__init__(max_entries=100)
        self.write_started = asyncio.Event()
        self.release_write = asyncio.Event()
        self.ttls: list[float] = []

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.ttls.append(ttl_s)
        self.write_started.set()
        await self.release_write.wait()
        await super().set(key, value, ttl_s)


async def immediately(value: bytes) -> bytes:
    return value


def make_cache(**options: object) -> tuple[ReadThroughCache, MemoryCacheStore, RecordingMetrics]:
    store = MemoryCacheStore(max_entries=100)
    metrics = RecordingMetrics()
    cache = ReadThroughCache(store, ttl_s=60, metrics=metrics, **options)  # type: ignore[arg-type]
    return cache, store, metrics


async def test_fifty_concurrent_misses_on_a_cold_key_call_the_loader_once() -> None:
    cache, _, metrics = make_cache()
    loader = CountingLoader(b"menu")

    callers = [asyncio.create_task(cache.get_or_load("menu", "menu:1", loader)) for _ in range(50)]
    await loader.started.wait()
    loader.release.set()
    results = await asyncio.gather(*callers)

    assert loader.calls == 1
    assert results == [b"menu"] * 50
    assert metrics.requests == {("menu", "miss"): 50}


async def test_a_repeated_request_is_served_from_the_cache() -> None:
    cache, _, metrics = make_cache()
    calls = 0

    async def loader() -> bytes:
        nonlocal calls
        calls += 1
        return b"menu"

    await cache.get_or_load("menu", "menu:1", loader)
    assert await cache.get_or_load("menu", "menu:1", loader) == b"menu"

    assert calls == 1
    assert metrics.requests == {("menu", "miss"): 1, ("menu", "hit"): 1}


async def test_a_loader_error_reaches_every_waiter_and_is_not_cached() -> None:
    cache, store, metrics = make_cache()
    release = asyncio.Event()

    async def failing() -> bytes:
        await release.wait()
        raise RuntimeError("database down")

    callers = [asyncio.create_task(cache.get_or_load("menu", "k", failing)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)

    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert await store.get("k") is None
    assert metrics.requests == {("menu", "error"): 5}
    assert await cache.get_or_load("menu", "k", lambda: immediately(b"fresh")) == b"fresh"


async def invalidated_mid_load(cache: ReadThroughCache) -> tuple[CountingLoader, Task[bytes]]:
    """A load of "menu:1" that has started, and is still waiting, when "menu:1" is invalidated."""
    stale = CountingLoader(b"old price")
    first = asyncio.create_task(cache.get_or_load("menu", "menu:1", stale))
    await stale.started.wait()
    await cache.invalidate("menu:1")
    return stale, first


async def test_a_load_that_started_before_invalidation_does_not_write_back_its_value() -> None:
    cache, store, _ = make_cache()
    stale, first = await invalidated_mid_load(cache)
    stale.release.set()
    await first

    assert await store.get("menu:1") is None
    assert await cache.get_or_load("menu", "menu:1", lambda: immediately(b"new")) == b"new"


async def test_callers_arriving_after_invalidation_do_not_join_the_stale_load() -> None:
    cache, _, _ = make_cache()
    stale, first = await invalidated_mid_load(cache)
    # Joining the stale load would block on its loader; the guard turns that into a failure.
    async with asyncio.timeout(5):
        later = await cache.get_or_load("menu", "menu:1", lambda: immediately(b"new price"))

    assert later == b"new price"
    stale.release.set()
    assert await first == b"old price"  # it asked before the invalidation finished


async def test_invalidation_returns_only_after_a_write_already_in_flight_is_deleted() -> None:
    store = GatedWriteStore()
    cache = ReadThroughCache(store, ttl_s=60)
    first = asyncio.create_task(cache.get_or_load("menu", "menu:1", lambda: immediately(b"old")))
    await store.write_started.wait()

    invalidation = asyncio.create_task(cache.invalidate("menu:1"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not invalidation.done()

    store.release_write.set()
    await invalidation
    await first
    assert await store.get("menu:1") is None


async def test_a_cancelled_caller_does_not_cancel_the_load_for_the_others() -> None:
    cache, store, _ = make_cache()
    loader = CountingLoader(b"menu")
    impatient = asyncio.create_task(cache.get_or_load("menu", "k", loader))
    patient = asyncio.create_task(cache.get_or_load("menu", "k", loader))
    await loader.started.wait()

    impatient.cancel()
    loader.release.set()

    assert await patient == b"menu"
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert await store.get("k") == b"menu"
    assert loader.calls == 1


async def test_a_disabled_cache_calls_the_loader_every_time_and_stores_nothing() -> None:
    cache, store, metrics = make_cache(enabled=False)
    calls = 0

    async def loader() -> bytes:
        nonlocal calls
        calls += 1
        return b"menu"

    for _ in range(3):
        assert await cache.get_or_load("menu", "k", loader) == b"menu"

    assert calls == 3
    assert await store.get("k") is None
    assert not metrics.requests


async def test_ttls_are_shortened_by_at_most_the_jitter_ratio() -> None:
    store = GatedWriteStore()
    store.release_write.set()
    cache = ReadThroughCache(store, ttl_s=100, jitter_ratio=0.1)

    for i in range(50):
        await cache.get_or_load("menu", f"k{i}", lambda: immediately(b"v"))

    assert all(90 <= ttl <= 100 for ttl in store.ttls)
    assert len(set(store.ttls)) > 1


async def test_a_per_call_ttl_overrides_the_default() -> None:
    store = GatedWriteStore()
    store.release_write.set()
    cache = ReadThroughCache(store, ttl_s=100, jitter_ratio=0)

    await cache.get_or_load("store", "k", lambda: immediately(b"v"), ttl_s=5)

    assert store.ttls == [5]


async def test_invalidating_several_keys_removes_each_of_them() -> None:
    cache, store, _ = make_cache()
    for key in ("a", "b", "c"):
        await cache.get_or_load("menu", key, lambda: immediately(b"v"))

    await cache.invalidate("a", "b")

    assert await store.get("a") is None
    assert await store.get("b") is None
    assert await store.get("c") == b"v"
