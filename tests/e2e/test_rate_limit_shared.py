"""Two real server processes sharing one Redis: the limit is exact across both, forged
X-Forwarded-For values do not help, and health checks are never limited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from harness.redis import redis_url
from tests.e2e.server import Server, base_env
from tests.factories import ADMIN_TOKEN, STAFF_KEY

REDIS_URL = redis_url("e2e-rate-limit-shared")
LIMIT = 30


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[Server]]:
    try:
        # This database belongs to this file alone. Its windows last an hour, so counts left by an
        # earlier run (a client address drawn again) must not leak into this one.
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.RedisError:
        pytest.fail(f"these tests need the Redis at {REDIS_URL}")
    servers = []
    for n in range(2):
        (tmp_path / str(n)).mkdir()
        env = base_env(
            APP_ENV="test",
            STAFF_API_KEYS=STAFF_KEY,
            ADMIN_TOKEN=ADMIN_TOKEN,
            JSON_DATA_PATH=str(tmp_path / str(n) / "pickup.json"),
            REDIS_URL=REDIS_URL,
            RATE_LIMIT_MAX=str(LIMIT),
            TRUST_PROXY="1",
            # A fresh window per test run: the key prefix is per process, the window is long.
            RATE_LIMIT_WINDOW_MS="3600000",
        )
        servers.append(Server(env, cwd=tmp_path / str(n)).start())
    yield servers
    for server in servers:
        server.stop()


async def hammer(servers: list[Server], count: int, headers_for: object) -> list[int]:
    async with httpx.AsyncClient(timeout=10) as client:
        responses = await asyncio.gather(
            *(
                client.get(f"{servers[i % 2].url}/v1/stores", headers=headers_for(i))  # type: ignore[operator]
                for i in range(count)
            )
        )
    return [r.status_code for r in responses]


def test_one_client_gets_exactly_the_limit_across_two_processes(two_servers: list[Server]) -> None:
    client_ip = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    statuses = asyncio.run(hammer(two_servers, 80, lambda i: {"X-Forwarded-For": client_ip}))
    assert statuses.count(200) == LIMIT and statuses.count(429) == 80 - LIMIT


def test_forged_forwarded_for_values_do_not_escape_the_limit(two_servers: list[Server]) -> None:
    # The trusted proxy (this test) appends the real client last; the client forged the rest.
    client_ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"

    def forged(i: int) -> dict[str, str]:
        return {"X-Forwarded-For": f"10.9.{i}.1, 192.0.2.{i % 250}, {client_ip}"}

    statuses = asyncio.run(hammer(two_servers, 80, forged))
    assert statuses.count(200) == LIMIT


def test_health_checks_are_never_limited_under_load(two_servers: list[Server]) -> None:
    client_ip = f"192.0.2.{uuid.uuid4().int % 250 + 1}"

    async def run() -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(timeout=10) as client:
            headers = {"X-Forwarded-For": client_ip}
            load = [client.get(f"{s.url}/v1/stores", headers=headers) for s in two_servers * 40]
            health = [
                client.get(f"{s.url}{p}", headers=headers)
                for s in two_servers
                for p in ("/healthz", "/readyz") * 25
            ]
            responses = await asyncio.gather(*load, *health)
        return [r.status_code for r in responses[:80]], [r.status_code for r in responses[80:]]

    load, health = asyncio.run(run())
    assert 429 in load
    assert set(health) == {200}


def test_rate_limit_headers_count_down_across_both_processes(two_servers: list[Server]) -> None:
    headers = {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250 + 1}"}
    remaining = []
    for i in range(4):
        response = httpx.get(f"{two_servers[i % 2].url}/v1/stores", headers=headers)
        remaining.append(response.headers["ratelimit"].split("remaining=")[1].split(",")[0])
    assert remaining == [str(LIMIT - n) for n in range(1, 5)]
