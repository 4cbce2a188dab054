"""`pickup seed` / `pickup data import` change data behind running servers: with Redis they
invalidate what they wrote; with the in-process cache they tell the operator how stale it may
be. Runs against a Redis database of its own from the harness (a leased, emptied database on the
shared server, else a private server): never a fixed database number, which another run on the
same server may hold (flushing it reset that run's rate-limit counters mid-test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from harness.redis import redis_url
from service.bootstrap import build_cache_store, invalidate_after_cli_write
from service.cache import ReadThroughCache
from service.cache.versioned import VersionedCache
from service.config import load_settings

REDIS_URL = redis_url("cli-cache-invalidation")


@pytest.fixture
async def empty_redis() -> AsyncIterator[None]:
    client = redis.Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield
    await client.flushdb()
    await client.aclose()


async def test_a_cli_write_bumps_the_shared_cache_versions_of_what_it_wrote(
    empty_redis: None,
) -> None:
    settings = load_settings({"REDIS_URL": REDIS_URL})
    store = build_cache_store(settings, None)
    cache = VersionedCache(store, ReadThroughCache(store, ttl_s=60))
    try:
        entities = ("stores", "menu:s1", "store:s1", "menu:s2", "order:o1", "order:o2")
        before = {e: await cache.version(e) for e in entities}
        said = await invalidate_after_cli_write(settings, ["s1"], ["o1"])
        after = {e: await cache.version(e) for e in before}
    finally:
        await store.aclose()
    assert "invalidated" in said and "1 orders" in said
    changed = {e for e in before if before[e] != after[e]}
    # s2 and o2 were not written: kept. An order's entity holds the ETag kept for its customer.
    assert changed == {"stores", "menu:s1", "store:s1", "order:o1"}


async def test_without_redis_the_operator_hears_how_long_servers_may_serve_old_data() -> None:
    said = await invalidate_after_cli_write(load_settings({"CACHE_TTL_SECONDS": "120"}), ["s1"])
    assert "CACHE_TTL_SECONDS=120s" in said and "restart" in said
    off = await invalidate_after_cli_write(load_settings({"CACHE_ENABLED": "false"}), ["s1"])
    assert "disabled" in off
