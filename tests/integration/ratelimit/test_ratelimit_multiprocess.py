"""Two uvicorn processes sharing one Redis must share one budget per client.

The test plays the trusted proxy (trust_proxy_hops=1): it appends the client's address as the last
`X-Forwarded-For` entry, and whatever it puts to the left is what a client could forge.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from harness.procs import Process, free_port, wait_http
from harness.redis import redis_url

pytestmark = pytest.mark.redis

HERE = Path(__file__).parent
REPO = HERE.parents[2]
REDIS_URL = redis_url("ratelimit")
LIMIT = 5


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    # One prefix for this module's servers; each test uses its own client addresses, so tests
    # never share a counter, and every key is deleted afterwards.
    prefix = f"test-rl-mp-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix,
        "RATELIMIT_LIMIT": str(LIMIT),
    }
    ports = [free_port(), free_port()]
    processes = [
        Process(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "ratelimit_app:create_app",
                "--factory",
                "--app-dir",
                str(HERE),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
            REPO,
            tmp_path_factory.mktemp("ratelimit") / "server.log",
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for process, url in zip(processes, urls, strict=True):
            process.start()
            wait_http(f"{url}/healthz", timeout=15, process=process)
        yield urls
    finally:
        for process in processes:
            process.stop(grace=5)
        store = redis.Redis.from_url(REDIS_URL)
        keys = list(store.scan_iter(match=f"{prefix}:*"))
        if keys:
            store.delete(*keys)
        store.close()


async def burst(urls: list[str], forwarded_for: list[str]) -> Counter[tuple[int, int]]:
    """Fires every request at once, alternating between the servers; counts (status, pid)."""
    async with httpx.AsyncClient(timeout=10) as client:
        responses = await asyncio.gather(
            *(
                client.get(f"{urls[i % len(urls)]}/v1/menu", headers={"X-Forwarded-For": xff})
                for i, xff in enumerate(forwarded_for)
            )
        )
    return Counter(
        (r.status_code, r.json()["pid"] if r.status_code == 200 else 0) for r in responses
    )


def test_alternating_between_processes_spends_one_shared_budget(servers: list[str]) -> None:
    client_ip = "198.51.100.10"

    responses = [
        httpx.get(f"{servers[i % 2]}/v1/menu", headers={"X-Forwarded-For": client_ip})
        for i in range(LIMIT + 2)
    ]

    assert [r.status_code for r in responses] == [200] * LIMIT + [429, 429]
    remaining = [r.headers["RateLimit"].split(", ")[1] for r in responses[:LIMIT]]
    assert remaining == [f"remaining={n}" for n in range(LIMIT - 1, -1, -1)]
    assert len({r.json()["pid"] for r in responses[:LIMIT]}) == 2


async def test_a_concurrent_burst_across_both_processes_allows_exactly_the_limit(
    servers: list[str],
) -> None:
    counts = await burst(servers, ["198.51.100.11"] * 16)

    assert sum(n for (status, _), n in counts.items() if status == 200) == LIMIT
    assert counts[(429, 0)] == 16 - LIMIT


async def test_a_client_rotating_forged_addresses_is_still_limited(servers: list[str]) -> None:
    client_ip = "198.51.100.20"
    forged = [f"10.{i}.{i}.{i}, 203.0.113.{i}, {client_ip}" for i in range(16)]

    counts = await burst(servers, forged)

    assert sum(n for (status, _), n in counts.items() if status == 200) == LIMIT
    assert counts[(429, 0)] == 16 - LIMIT


async def test_another_client_keeps_its_own_budget(servers: list[str]) -> None:
    await burst(servers, ["198.51.100.30"] * (LIMIT + 2))

    counts = await burst(servers, ["198.51.100.31"] * LIMIT)

    assert sum(n for (status, _), n in counts.items() if status == 200) == LIMIT
