"""A Redis several round trips away (a managed Redis in another region): connecting has its own,
longer deadline, so the store connects, and then every read answers within the per-op deadline."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from harness.tcp_proxy import TcpProxy
from service.cache.redis import RedisCacheStore

pytestmark = pytest.mark.redis

# Each chunk waits 0.1 s each way: a round trip costs 0.2 s, so one GET fits the 0.3 s per-op
# deadline while dialling plus the connection handshake plus a GET (at least 0.4 s) does not.
ONE_WAY_DELAY_S = 0.1
OP_TIMEOUT_S = 0.3


@pytest.fixture
def distant_redis(shared_redis_url: str) -> Iterator[str]:
    # The proxy runs on an event loop of its own, as a remote link would: nothing of it is left
    # on the test's loop.
    parts = urlsplit(shared_redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379, delay_s=ONE_WAY_DELAY_S)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=10)
    yield f"redis://127.0.0.1:{proxy.port}{parts.path}"
    asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
    # The garbage this leaves makes the next automatic full collection of pytest's heap (about
    # 0.4 s here) likely to land inside the next test's 0.1 s cache deadline: collect it now.
    gc.collect()


async def test_a_distant_redis_connects_and_then_answers_every_read_within_the_op_deadline(
    distant_redis: str, shared_redis: redis.asyncio.Redis, key_prefix: str
) -> None:
    await shared_redis.set(f"{key_prefix}menu", b"cached menu", ex=60)
    store = RedisCacheStore.from_url(
        distant_redis, op_timeout_s=OP_TIMEOUT_S, connect_timeout_s=2.0, key_prefix=key_prefix
    )
    try:
        answers = [await store.get("menu") for _ in range(8)]
    finally:
        await store.aclose()

    # Connecting took several round trips under its own deadline; each read after it is one
    # round trip inside the per-op deadline. (Before issue 17 connecting shared the per-op
    # deadline, and this Redis was never reached: eight misses.)
    assert answers == [b"cached menu"] * 8


async def test_a_connect_that_outlasts_the_connect_timeout_is_a_miss_not_a_hang(
    distant_redis: str, shared_redis: redis.asyncio.Redis, key_prefix: str
) -> None:
    await shared_redis.set(f"{key_prefix}menu", b"cached menu", ex=60)
    store = RedisCacheStore.from_url(
        distant_redis, op_timeout_s=OP_TIMEOUT_S, connect_timeout_s=0.05, key_prefix=key_prefix
    )
    try:
        answers = [await store.get("menu") for _ in range(3)]
    finally:
        await store.aclose()

    assert answers == [None] * 3
