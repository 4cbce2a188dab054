"""kill -9 in the middle of writes on the JSON-file backend (one worker, as it requires)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest

from tests.reliability.load import Shop, open_shop
from tests.reliability.procs import STAFF, Service
from tests.reliability.table import Summary, fixed_bug

ROUNDS = 5
WRITERS = 8
ACKS_BEFORE_KILL = 30
Acked = tuple[str, str, str]  # order id, order token, pickup code


def json_service(home: Path, port: int | None = None) -> Service:
    # The JSON backend allows one writer: one worker, as the configuration insists.
    return Service(home, port=port, DATA_BACKEND="json", WEB_CONCURRENCY=1)


async def write_until_killed(service: Service, shop: Shop, round_: int) -> tuple[list[Acked], int]:
    """Eight customers order as fast as they can; after ACKS_BEFORE_KILL acknowledgements the
    server is killed with SIGKILL, with writes in flight. Returns (acknowledged, sent)."""
    acknowledged: list[Acked] = []
    sent = 0

    async def customer(client: httpx.AsyncClient, n: int) -> None:
        nonlocal sent
        i = 0
        while True:
            i += 1
            sent += 1
            body = shop.order(shop.slots[(n * 7 + i + round_) % len(shop.slots)])
            try:
                r = await client.post("/v1/orders", json=body)
            except httpx.HTTPError:
                return  # the server is gone
            if r.status_code == 201:
                acknowledged.append(
                    (r.json()["id"], r.json()["order_token"], r.json()["pickup_code"])
                )

    async def killer() -> None:
        while len(acknowledged) < ACKS_BEFORE_KILL:  # noqa: ASYNC110 - polling a plain list
            await asyncio.sleep(0.005)
        service.kill()

    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        await asyncio.gather(killer(), *(customer(client, n) for n in range(WRITERS)))
    return acknowledged, sent


@pytest.mark.timeout(90)
def test_kill_9_while_orders_are_written_leaves_a_valid_file_with_every_acknowledged_order(
    tmp_path: Path, summary: Summary
) -> None:
    row = summary(
        "kill -9 during JSON writes",
        done=f"{ROUNDS} rounds: {WRITERS} customers order flat out on the JSON backend "
        f"(1 worker), SIGKILL after {ACKS_BEFORE_KILL} acks, restart",
    )
    home = tmp_path / "service"
    data = home / "pickup.json"
    service = json_service(home).start()
    shop = open_shop(service.url)
    acknowledged: list[Acked] = []
    sent = 0
    missing: list[str] = []
    try:
        for round_ in range(ROUNDS):
            acked, tried = asyncio.run(write_until_killed(service, shop, round_))
            acknowledged += acked
            sent += tried
            document = orjson.loads(data.read_bytes())  # whole, never torn
            on_disk = {o["id"] for o in document["orders"]}
            missing += [order_id for order_id, _, _ in acked if order_id not in on_disk]
            service = json_service(home, port=service.port).start()
        with httpx.Client(base_url=service.url, timeout=10) as http:
            for order_id, token, code in acknowledged:
                got = http.get(f"/v1/orders/{order_id}", headers={"X-Order-Token": token})
                if got.status_code != 200 or got.json()["pickup_code"] != code:
                    missing.append(order_id)
            listed = http.get(
                f"/v1/stores/{shop.store_id}/orders", headers=STAFF, params={"limit": 100}
            )
            assert listed.status_code == 200
    finally:
        service.stop()
    leftovers = sorted(p.name for p in home.glob(".pickup.json.*.tmp"))
    row.add(requests=sent + len(acknowledged), failures=len(missing))
    row.held = (
        f"file parsed after every kill; all {len(acknowledged)} acknowledged orders on disk and "
        f"served after restart with their pickup codes"
        + (f"; {len(leftovers)} stale temp file(s) left by the kills" if leftovers else "")
    )
    assert len(acknowledged) >= ROUNDS * ACKS_BEFORE_KILL
    assert missing == []


def test_start_up_removes_the_temporary_file_a_killed_write_left_behind(
    tmp_path: Path, summary: Summary
) -> None:
    fixed_bug(summary, requests=1)
    home = tmp_path / "service"
    home.mkdir()
    orphan = home / ".pickup.json.4242.tmp"  # what a write killed before its rename leaves
    orphan.write_bytes(b'{"format": "pickup-data", "version": 1, "stores": [')
    with json_service(home):
        pass
    assert not orphan.exists()
