"""The pickup code is the customer's proof at the counter: the production-shaped service (two
workers, PostgreSQL, Redis) shows it to the customer and to no staff read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.reliability.load import Shop, open_shop
from tests.reliability.procs import STAFF, PrivateRedis, Production, Service
from tests.reliability.table import Summary

SCENARIO = "pickup code secrecy"


def test_staff_reads_never_show_the_pickup_code_the_customer_sees(
    production: Production, summary: Summary
) -> None:
    row = summary(
        SCENARIO,
        done="an order placed on the production-shaped service, read by its customer "
        "(X-Order-Token) and by staff (order, store list, status change)",
    )
    shop = production.shop
    with httpx.Client(base_url=production.service.url, timeout=10) as http:
        created = http.post("/v1/orders", json=shop.order(shop.slots[-1])).json()
        path = f"/v1/orders/{created['id']}"
        customer = http.get(path, headers={"X-Order-Token": created["order_token"]}).json()
        staff_reads = [
            http.get(path, headers=STAFF).json(),
            *[
                o
                for o in http.get(
                    f"/v1/stores/{shop.store_id}/orders", headers=STAFF, params={"limit": 100}
                ).json()["items"]
            ],
            http.post(f"{path}/status", json={"status": "accepted"}, headers=STAFF).json(),
        ]
    leaked = [o["id"] for o in staff_reads if "pickup_code" in o]
    row.add(requests=5, failures=len(leaked))
    row.held = (
        f"the customer saw the code; {len(staff_reads)} staff answers, none with a pickup_code"
    )
    assert customer["pickup_code"] == created["pickup_code"]
    assert created["id"] in {o["id"] for o in staff_reads}
    assert leaked == []


def test_anonymous_or_malformed_guesses_cannot_lock_out_the_hand_over_and_redis_down_still_counts(
    tmp_path: Path, summary: Summary
) -> None:
    row = summary(SCENARIO)
    with (
        PrivateRedis(tmp_path) as redis,
        Service(
            tmp_path / "service",
            DATA_BACKEND="json",
            WEB_CONCURRENCY=1,
            REDIS_URL=redis.url,
            RATE_LIMIT_FAIL_OPEN="true",
            PICKUP_CODE_ATTEMPTS_MAX=5,
        ) as service,
    ):
        shop = open_shop(service.url)
        with httpx.Client(base_url=service.url, timeout=10) as http:
            first, second = (ready_order(http, shop, slot) for slot in shop.slots[:2])
            path = f"/v1/orders/{first['id']}/pickup"
            noise = [http.post(path, json={"pickup_code": "000000"}) for _ in range(5)]
            noise += [
                http.post(path, json={"pickup_code": bad}, headers=STAFF)
                for bad in ("1", "abcdef", "1234567", "", "00000a")
            ]
            handed = http.post(path, json={"pickup_code": first["pickup_code"]}, headers=STAFF)
            redis.kill()
            browse = http.get(f"/v1/stores/{shop.store_id}")  # the general limiter fails open
            # Counted in the process while Redis cannot count: the budget still holds.
            second_path = f"/v1/orders/{second['id']}/pickup"
            wrong = "000000" if second["pickup_code"] != "000000" else "111111"
            guesses = [
                http.post(second_path, json={"pickup_code": wrong}, headers=STAFF) for _ in range(5)
            ]
            beyond = http.post(
                second_path, json={"pickup_code": second["pickup_code"]}, headers=STAFF
            )
            third = ready_order(http, shop, shop.slots[2])
            collected = http.post(
                f"/v1/orders/{third['id']}/pickup",
                json={"pickup_code": third["pickup_code"]},
                headers=STAFF,
            )
    row.add(
        requests=len(noise) + len(guesses) + 4,
        failures=int(handed.status_code != 200) + int(collected.status_code != 200),
    )
    row.held = (row.held + "; " if row.held else "") + (
        "5 anonymous + 5 malformed posts (budget 5) left the hand-over working; with Redis "
        f"killed browsing answered {browse.status_code}, a 6th attempt after 5 wrong codes "
        f"{beyond.status_code} (counted in process), another order's hand-over "
        f"{collected.status_code}"
    )
    assert [r.status_code for r in noise] == [401] * 5 + [422] * 5
    assert handed.status_code == 200 and handed.json()["status"] == "picked_up"
    assert browse.status_code == 200
    assert [r.status_code for r in guesses] == [403] * 5
    assert beyond.status_code == 429
    assert collected.status_code == 200 and collected.json()["status"] == "picked_up"


def ready_order(http: httpx.Client, shop: Shop, slot: str) -> dict[str, Any]:
    order = http.post("/v1/orders", json=shop.order(slot)).json()
    for status in ("accepted", "preparing", "ready"):
        http.post(f"/v1/orders/{order['id']}/status", json={"status": status}, headers=STAFF)
    return dict(order)
