from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import redis
from structlog.testing import capture_logs

from harness.redis import redis_url
from harness.tcp_proxy import TcpProxy
from service.ratelimit import Decision, Limiter, LimiterUnavailable, RateLimit, StrategyName

pytestmark = pytest.mark.redis

REDIS_URL = redis_url("ratelimit")
_parts = urlsplit(REDIS_URL)
REDIS_HOST, REDIS_PORT = _parts.hostname or "127.0.0.1", _parts.port or 6379
REDIS_DB = int(_parts.path.strip("/") or 0)


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"test-rl-{uuid.uuid4().hex}"
    yield prefix
    store = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    keys = list(store.scan_iter(match=f"{prefix}:*"))
    if keys:
        store.delete(*keys)
    store.close()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter", "moving-window"])
async def test_every_strategy_allows_exactly_the_limit_under_concurrent_hits(
    strategy: StrategyName, prefix: str
) -> None:
    limiter = Limiter(REDIS_URL, strategy=strategy, key_prefix=prefix, timeout_s=2)
    policy = RateLimit(5, 60)

    results = await asyncio.gather(*(limiter.hit(policy, "client:a") for _ in range(12)))
    await limiter.aclose()

    assert all(isinstance(r, Decision) and not r.degraded for r in results)
    assert sum(isinstance(r, Decision) and r.allowed for r in results) == 5


async def test_counters_live_under_the_key_prefix(prefix: str) -> None:
    limiter = Limiter(REDIS_URL, key_prefix=prefix)
    await limiter.hit(RateLimit(5, 60), "client:a")
    await limiter.aclose()

    store = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    keys = list(store.scan_iter(match=f"{prefix}:*"))
    store.close()

    assert keys


async def test_a_redis_that_never_answers_fails_within_the_timeout_instead_of_hanging() -> None:
    async with silent_server() as port:
        limiter = Limiter(f"redis://127.0.0.1:{port}/0", fail_open=False, timeout_s=0.2)
        # The outer deadline only turns a hang into a failure; it is not a latency claim.
        async with asyncio.timeout(5):
            result = await limiter.hit(RateLimit(5, 60), "client:a")
        await limiter.aclose()

    assert isinstance(result, LimiterUnavailable)
    assert limiter.storage_errors == 1


async def test_limiting_resumes_when_redis_comes_back_without_a_restart(prefix: str) -> None:
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT)
    await proxy.start()
    limiter = Limiter(f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}", key_prefix=prefix)
    policy = RateLimit(5, 60)

    with capture_logs() as logs:
        before = await limiter.hit(policy, "client:a")
        await proxy.stop()
        during = [await limiter.hit(policy, "client:a") for _ in range(3)]
        await proxy.start()
        after = await limiter.hit(policy, "client:a")
    await proxy.stop()
    await limiter.aclose()

    assert isinstance(before, Decision) and before.remaining == 4 and not before.degraded
    assert all(isinstance(d, Decision) and d.allowed and d.degraded for d in during)
    # The count kept in Redis survived the outage: the outage's hits were simply not counted.
    assert isinstance(after, Decision) and after.remaining == 3 and not after.degraded
    assert limiter.storage_errors == 3
    events = [e["event"] for e in logs]
    assert events == ["rate_limiter_storage_failed", "rate_limiter_storage_recovered"]
