"""Production's shape: several server processes sharing PostgreSQL and Redis. Capacity,
idempotency, cache coherence and metrics must hold across all of them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.postgres import postgres
from harness.redis import redis_url
from tests.e2e.server import Server, postgres_env
from tests.e2e.test_serve import STAFF, first_bookable_slot, open_shop, order

REDIS_URL = redis_url("e2e-shared-backends")


@pytest.fixture
def database_url() -> Iterator[str]:
    server = postgres()
    dsn = server.create_database("pickup_e2e")
    yield dsn
    server.drop_database(dsn)


def shared_env(dsn: str, **values: str) -> dict[str, str]:
    return postgres_env(dsn, REDIS_URL=REDIS_URL, **values)


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[list[Server]]:
    servers = [Server(shared_env(database_url), cwd=tmp_path).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def test_fifty_orders_for_five_seats_across_two_processes_create_five(
    two_servers: list[Server],
) -> None:
    http = httpx.Client(base_url=two_servers[0].url)
    store_id, item_id = open_shop(http, capacity=5)
    body = order(store_id, item_id, first_bookable_slot(http, store_id))

    async def rush() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(client.post(f"{two_servers[i % 2].url}/v1/orders", json=body) for i in range(50))
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(rush())
    assert statuses.count(201) == 5 and statuses.count(409) == 45
    listed = http.get(f"/v1/stores/{store_id}/orders", headers=STAFF, params={"limit": 100})
    assert len(listed.json()["items"]) == 5


def test_idempotent_retries_across_processes_create_one_order(two_servers: list[Server]) -> None:
    http = httpx.Client(base_url=two_servers[0].url)
    store_id, item_id = open_shop(http, capacity=50)
    body = order(store_id, item_id, first_bookable_slot(http, store_id))
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}

    async def retries() -> set[str]:
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(f"{two_servers[i % 2].url}/v1/orders", json=body, headers=key)
                    for i in range(20)
                )
            )
        assert {r.status_code for r in responses} == {201}
        return {r.json()["id"] for r in responses}

    assert len(asyncio.run(retries())) == 1


def test_a_write_through_one_process_is_read_fresh_through_the_other(
    two_servers: list[Server],
) -> None:
    writer, reader = (httpx.Client(base_url=s.url) for s in two_servers)
    store_id, item_id = open_shop(writer, capacity=5)
    menu = f"/v1/stores/{store_id}/menu"
    for price in range(500, 520):
        reader.get(menu)  # warm the shared cache with the current value
        writer.patch(
            f"{menu}/{item_id}", json={"price_cents": price}, headers=STAFF
        ).raise_for_status()
        assert reader.get(menu).json()["items"][0]["price_cents"] == price
        assert (
            reader.get(menu, headers={"Accept-Encoding": "gzip"}).json()["items"][0]["price_cents"]
            == price
        )


def test_metrics_count_every_worker(database_url: str, tmp_path: Path) -> None:
    temp = tmp_path / "temp"  # where the server makes its workers' metrics folder
    temp.mkdir()
    env = shared_env(database_url, WEB_CONCURRENCY="2", TMPDIR=str(temp))
    with Server(env, cwd=tmp_path) as server:
        for _ in range(60):  # fresh connections spread over both workers
            httpx.get(f"{server.url}/healthz")
        text = httpx.get(f"{server.url}/metrics").text
        assert len(list(temp.glob("pickup-metrics-*"))) == 1
    assert list(temp.glob("pickup-metrics-*")) == []  # removed when the server stopped
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('http_requests_total{method="GET",route="/healthz"')
    )
    pids = {
        line.split('pid="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("process_resident_memory_bytes{")
    }
    assert served >= 60
    assert len(pids) == 2
