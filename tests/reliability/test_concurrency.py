"""A rush on a few seats and impatient customers retrying, spread over both workers.

Every request opens its own connection, so the kernel hands them to either worker; capacity and
idempotency must hold in PostgreSQL, not in one process's memory.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest

from tests.reliability.load import Shop, open_shop
from tests.reliability.procs import Deploy, PrivatePostgres, Service
from tests.reliability.table import Summary

SCENARIO = "slot rush and retries, 2 workers"


@pytest.fixture
def two_workers(deploy: Deploy) -> tuple[Service, str]:
    deployment = deploy()
    return deployment.service, deployment.dsn


async def send_all(url: str, requests: list[tuple[dict[str, Any], dict[str, str]]]) -> list[Any]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(client.post("/v1/orders", json=body, headers=headers) for body, headers in requests)
        )


def stored_orders(pg: PrivatePostgres, dsn: str, shop: Shop) -> list[Any]:
    return pg.fetch(
        dsn,
        "SELECT o.id::text AS id, o.pickup_slot_start AS slot, o.status, k.key "
        "FROM orders o LEFT JOIN idempotency_keys k ON k.order_id = o.id "
        "WHERE o.store_id = $1::uuid",
        shop.store_id,
    )


@pytest.mark.timeout(60)
def test_a_rush_of_180_orders_on_three_slots_of_five_seats_books_exactly_fifteen(
    two_workers: tuple[Service, str], private_postgres: PrivatePostgres, summary: Summary
) -> None:
    row = summary(
        SCENARIO,
        done="180 simultaneous orders for 3 slots x 5 seats; 10 keys x 6 "
        "simultaneous retries into 3 seats; 20 keys x 5 retries with room",
    )
    service, dsn = two_workers
    shop = open_shop(service.url, capacity=5)
    slots = shop.slots[:3]
    cpu_before = service.worker_cpu_s()
    responses = asyncio.run(send_all(service.url, [(shop.order(slot), {}) for slot in slots * 60]))
    cpu_used = {
        pid: used - cpu_before.get(pid, 0.0) for pid, used in service.worker_cpu_s().items()
    }
    by_slot: dict[str, Counter[int]] = defaultdict(Counter)
    for slot, response in zip(slots * 60, responses, strict=True):
        by_slot[slot][response.status_code] += 1
    refused = {r.json()["error"]["code"] for r in responses if r.status_code != 201}
    stored = Counter(r["slot"].isoformat() for r in stored_orders(private_postgres, dsn, shop))
    listed = httpx.get(
        f"{service.url}/v1/stores/{shop.store_id}/slots", params={"date": slots[0][:10]}
    ).json()["items"]
    remaining = {s["start"]: s["remaining"] for s in listed}
    unexpected = [r for r in responses if r.status_code not in (201, 409)]
    row.add(requests=len(responses), failures=len(unexpected))
    row.held = (
        "exactly 5 orders per 5-seat slot, the rest 409 slot_full, remaining 0 (CPU of the rush: "
        + " / ".join(f"{used:.2f} s" for used in cpu_used.values())
        + " on the two workers)"
    )
    assert unexpected == []
    assert len(cpu_used) == 2 and all(used > 0 for used in cpu_used.values()), cpu_used
    assert {slot: dict(c) for slot, c in by_slot.items()} == {
        slot: {201: 5, 409: 55} for slot in slots
    }
    assert refused == {"slot_full"}
    assert sorted(stored.values()) == [5, 5, 5]
    assert [remaining[slot] for slot in slots] == [0, 0, 0]


@pytest.mark.timeout(60)
def test_simultaneous_retries_of_one_order_on_both_workers_create_it_once(
    two_workers: tuple[Service, str], private_postgres: PrivatePostgres, summary: Summary
) -> None:
    row = summary(SCENARIO)
    service, dsn = two_workers
    shop = open_shop(service.url, capacity=3)
    slot = shop.slots[0]
    # Ten customers, three seats, each customer's app retrying six times at once.
    keys = [f"rush-{uuid.uuid4()}" for _ in range(10)]
    attempts = [(shop.order(slot), {"Idempotency-Key": key}) for key in keys for _ in range(6)]
    responses = asyncio.run(send_all(service.url, attempts))
    outcomes: dict[str, set[tuple[int, str]]] = defaultdict(set)
    replayed = 0
    for (_, headers), response in zip(attempts, responses, strict=True):
        body = response.json()
        ident = body["id"] if response.status_code == 201 else body["error"]["code"]
        outcomes[headers["Idempotency-Key"]].add((response.status_code, ident))
        replayed += response.headers.get("idempotent-replayed") == "true"
    winners = [k for k, seen in outcomes.items() if {s for s, _ in seen} == {201}]
    stored = stored_orders(private_postgres, dsn, shop)
    row.add(requests=len(responses))
    # Each key got one answer, whichever worker each retry reached.
    assert all(len(seen) == 1 for seen in outcomes.values()), outcomes
    assert len(winners) == 3
    assert {next(iter(outcomes[k])) for k in keys if k not in winners} == {(409, "slot_full")}
    assert replayed == 3 * 5
    assert sorted(r["key"] for r in stored) == sorted(winners)

    # With room for everyone: twenty customers, five simultaneous retries each, twenty orders.
    roomy = open_shop(service.url, capacity=100)
    keys = [f"retry-{uuid.uuid4()}" for _ in range(20)]
    attempts = [
        (roomy.order(roomy.slots[1]), {"Idempotency-Key": k}) for k in keys for _ in range(5)
    ]
    responses = asyncio.run(send_all(service.url, attempts))
    row.add(requests=len(responses), failures=sum(r.status_code != 201 for r in responses))
    ids = defaultdict(set)
    for (_, headers), response in zip(attempts, responses, strict=True):
        assert response.status_code == 201, response.text
        ids[headers["Idempotency-Key"]].add(response.json()["id"])
    assert all(len(found) == 1 for found in ids.values())
    assert len(stored_orders(private_postgres, dsn, roomy)) == 20
    # The same key with another body is refused, not replayed.
    other = httpx.post(
        f"{service.url}/v1/orders",
        json=roomy.order(roomy.slots[2]),
        headers={"Idempotency-Key": keys[0]},
    )
    row.add(requests=1, failures=int(other.status_code != 409))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    row.held += (
        "; one order per Idempotency-Key across workers, every retry of a key the same answer, "
        "replays flagged; a reused key with another body 409"
    )
