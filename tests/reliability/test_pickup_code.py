"""The pickup code is the customer's proof at the counter: the production-shaped service (two
workers, PostgreSQL, Redis) shows it to the customer and to no staff read."""

from __future__ import annotations

import httpx

from tests.reliability.procs import STAFF, Production
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
