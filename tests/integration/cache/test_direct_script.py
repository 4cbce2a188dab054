"""The hot read's script runner (service/cache/script.py) against real Redis servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from harness.redis import RedisServer
from service.cache.redis import RedisCacheStore
from service.cache.script import DirectScript, pack

pytestmark = pytest.mark.redis

ECHO = "return {KEYS[1], ARGV[1]}"
# Busy for ARGV[1] seconds, then returns ARGV[2].
BUSY_FOR = """
local t = redis.call('TIME')
local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1]) * 1000000
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop
return ARGV[2]
"""


@pytest.fixture
def server(start_redis: Any) -> RedisServer:
    server: RedisServer = start_redis()
    return server


@pytest.fixture
async def pool(server: RedisServer) -> AsyncIterator[redis.asyncio.ConnectionPool]:
    pool = redis.asyncio.ConnectionPool.from_url(server.url)
    yield pool
    await pool.aclose()


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    parts = ("EVALSHA", "ab12", 1, "k:é", b"bin\r\nary", 10**9)
    expected = b"".join(redis.asyncio.Connection().pack_command(*parts))  # type: ignore[no-untyped-call]
    assert pack(*parts) == expected


async def test_a_script_the_server_lost_is_sent_again(
    pool: redis.asyncio.ConnectionPool,
) -> None:
    script = DirectScript(pool, ECHO)
    assert await script(["k"], ["v"]) == [b"k", b"v"]

    await redis.asyncio.Redis(connection_pool=pool).script_flush()
    assert await script(["k2"], [7]) == [b"k2", b"7"]
    await script.aclose()


async def test_a_dead_connection_is_replaced_within_the_call_when_retries_allow(
    server: RedisServer, pool: redis.asyncio.ConnectionPool
) -> None:
    retrying, failing = DirectScript(pool, ECHO, retries=1), DirectScript(pool, ECHO)
    assert await retrying(["k"], ["v"]) == [b"k", b"v"]
    assert await failing(["k"], ["v"]) == [b"k", b"v"]

    server.stop()
    server.start()  # same port: both idle connections are dead

    assert await retrying(["k"], ["v"]) == [b"k", b"v"]
    with pytest.raises((redis.ConnectionError, OSError)):
        await failing(["k"], ["v"])
    assert await failing(["k"], ["v"]) == [b"k", b"v"]  # healed on the next call
    await retrying.aclose()
    await failing.aclose()


async def test_a_call_cut_off_by_its_deadline_leaves_no_half_read_reply_behind(
    pool: redis.asyncio.ConnectionPool,
) -> None:
    slow = DirectScript(pool, BUSY_FOR)
    assert await slow([], [0, "first"]) == b"first"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await slow([], [0.3, "late"])
    # A reused connection would read "late" here.
    assert await slow([], [0, "next"]) == b"next"
    await slow.aclose()


async def test_the_cache_reads_through_a_redis_that_restarted(server: RedisServer) -> None:
    store = RedisCacheStore.from_url(server.url, op_timeout_s=0.5)
    await store.set("v:e", b"1", ttl_s=60)
    await store.set("e@1/x", b"value", ttl_s=60)
    assert await store.get_indirect("v:e", "e@", "/x") == (b"1", b"value")

    server.stop()
    assert await store.get_indirect("v:e", "e@", "/x") == (None, None)
    server.start()
    await store.set("v:e", b"2", ttl_s=60)
    await store.set("e@2/x", b"again", ttl_s=60)
    assert await store.get_indirect("v:e", "e@", "/x") == (b"2", b"again")
    await store.aclose()
