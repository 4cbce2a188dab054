from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from service.cache.readthrough import ReadThroughCache
from service.cache.redis import RedisCacheStore
from service.observability.metrics import Metrics

pytestmark = pytest.mark.redis

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def store_errors(metrics: Metrics, operation: str) -> float:
    labels = {"backend": "redis", "operation": operation}
    return metrics.registry.get_sample_value("cache_store_errors_total", labels) or 0


async def seconds_taken(operation: Awaitable[object]) -> float:
    started = time.monotonic()
    await operation
    return time.monotonic() - started


@pytest.fixture
async def store(
    shared_redis: redis.asyncio.Redis, shared_redis_url: str, key_prefix: str
) -> AsyncIterator[RedisCacheStore]:
    store = RedisCacheStore.from_url(shared_redis_url, key_prefix=key_prefix)
    yield store
    await store.aclose()


async def test_a_value_round_trips_under_the_key_prefix(
    store: RedisCacheStore, shared_redis: redis.asyncio.Redis, key_prefix: str
) -> None:
    await store.set("menu:1", b"\x00\xffbody", ttl_s=30)

    assert await store.get("menu:1") == b"\x00\xffbody"
    assert await shared_redis.get(key_prefix + "menu:1") == b"\x00\xffbody"
    assert 0 < await shared_redis.pttl(key_prefix + "menu:1") <= 30_000
    assert await store.get("menu:2") is None


async def test_an_entry_expires_after_its_ttl(store: RedisCacheStore) -> None:
    await store.set("short", b"v", ttl_s=0.2)
    assert await store.get("short") == b"v"

    await asyncio.sleep(0.4)

    assert await store.get("short") is None


async def test_delete_removes_exactly_the_named_keys(store: RedisCacheStore) -> None:
    for key in ("a", "b", "c"):
        await store.set(key, b"v", ttl_s=30)

    await store.delete("a", "c")

    assert [await store.get(key) for key in ("a", "b", "c")] == [None, b"v", None]


async def test_ping_reports_a_reachable_server(store: RedisCacheStore) -> None:
    assert await store.ping() is True


async def test_a_store_on_a_closed_port_answers_misses_quickly_and_counts_errors() -> None:
    metrics = Metrics()
    store = RedisCacheStore.from_url(CLOSED_PORT_URL, op_timeout_s=0.05, metrics=metrics)

    assert await store.get("k") is None
    durations = [
        await seconds_taken(store.get("k")),
        await seconds_taken(store.set("k", b"v", ttl_s=30)),
        await seconds_taken(store.delete("k")),
    ]
    assert await store.ping() is False
    await store.aclose()

    assert max(durations) < 1.0
    assert [store_errors(metrics, op) for op in ("get", "set", "delete", "ping")] == [2, 1, 1, 1]


async def test_a_server_that_never_answers_is_cut_off_by_the_operation_timeout() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept commands, never reply
        writer.close()

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    metrics = Metrics()
    store = RedisCacheStore.from_url(
        f"redis://127.0.0.1:{port}/0", op_timeout_s=0.1, metrics=metrics
    )
    try:
        started = time.monotonic()
        assert await store.get("k") is None
        assert time.monotonic() - started < 1.0
        assert store_errors(metrics, "get") == 1
    finally:
        await store.aclose()
        silent.close()
        await silent.wait_closed()


async def test_requests_are_still_served_by_the_loader_while_redis_is_down() -> None:
    metrics = Metrics()
    store = RedisCacheStore.from_url(CLOSED_PORT_URL, op_timeout_s=0.05, metrics=metrics)
    cache = ReadThroughCache(store, ttl_s=30, metrics=metrics)

    async def from_database() -> bytes:
        return b"menu from the database"

    for _ in range(3):
        assert await cache.get_or_load("menu", "menu:1", from_database) == b"menu from the database"
    await store.aclose()

    misses = metrics.registry.get_sample_value(
        "cache_requests_total", {"cache": "menu", "result": "miss"}
    )
    assert misses == 3
    assert store_errors(metrics, "get") == 3


async def test_the_store_recovers_by_itself_when_redis_comes_back(start_redis: Any) -> None:
    redis_server = start_redis()
    metrics = Metrics()
    store = RedisCacheStore.from_url(redis_server.url, op_timeout_s=0.2, metrics=metrics)
    await store.set("k", b"before", ttl_s=60)
    assert await store.get("k") == b"before"

    redis_server.stop()
    assert await store.get("k") is None
    assert store_errors(metrics, "get") >= 1

    redis_server.start()  # same port, empty data set
    recovered = False
    for _ in range(50):
        await store.set("k", b"after", ttl_s=60)
        if await store.get("k") == b"after":
            recovered = True
            break
        await asyncio.sleep(0.1)
    await store.aclose()

    assert recovered


async def test_the_password_in_the_url_never_reaches_the_logs(json_output: io.StringIO) -> None:
    store = RedisCacheStore.from_url("redis://:hunter2-pw@127.0.0.1:1/0", op_timeout_s=0.05)

    await store.get("k")
    await store.aclose()

    assert "cache_store_error" in json_output.getvalue()
    assert '"target":"redis://127.0.0.1:1/0"' in json_output.getvalue()
    assert "hunter2-pw" not in json_output.getvalue()


async def test_a_password_protected_server_is_reached_with_the_urls_credentials(
    start_redis: Any,
) -> None:
    server = start_redis("--requirepass", "s3cret")
    store = RedisCacheStore.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/0")
    try:
        await store.set("k", b"v", ttl_s=30)
        assert await store.get("k") == b"v"
    finally:
        await store.aclose()


async def test_a_rediss_url_talks_tls_to_a_tls_only_server(
    start_redis: Any, make_certificate: Callable[[str], tuple[Path, Path]]
) -> None:
    cert, key = make_certificate("IP:127.0.0.1")
    server = start_redis(tls=(cert, key))
    tls_store = RedisCacheStore.from_url(f"{server.url}?ssl_ca_certs={cert}", op_timeout_s=0.5)
    plain_store = RedisCacheStore.from_url(f"redis://127.0.0.1:{server.port}/0", op_timeout_s=0.2)
    try:
        await tls_store.set("k", b"over tls", ttl_s=30)
        assert await tls_store.get("k") == b"over tls"
        assert await plain_store.get("k") is None  # plaintext is refused, and reads as a miss
    finally:
        await tls_store.aclose()
        await plain_store.aclose()
