from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from harness.redis import RedisServer, redis_url

SHARED_REDIS_URL = redis_url("integration-cache")


StartRedis = Callable[..., RedisServer]


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[StartRedis]:
    """Starts redis-server processes of our own (harness `RedisServer`); kills them afterwards."""
    servers: list[RedisServer] = []

    def start(*extra_args: str, tls: tuple[Path, Path] | None = None) -> RedisServer:
        server = RedisServer(tmp_path, *extra_args, tls=tls)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def shared_redis_url() -> str:
    return SHARED_REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
async def shared_redis(key_prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A raw client on this session's Redis database; removes this test's keys afterwards."""
    client = redis.asyncio.Redis.from_url(SHARED_REDIS_URL)
    try:
        await client.ping()
    except redis.RedisError as exc:
        await client.aclose()
        pytest.skip(f"no Redis at {SHARED_REDIS_URL}: {exc}")
    yield client
    # Test-only cleanup may scan: the prefix is unique to this test and the DB is scratch.
    keys = [key async for key in client.scan_iter(match=f"{key_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
