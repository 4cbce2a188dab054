"""Customers ordering ahead: slots, order (idempotent), polling, some cancel; staff hand over.

Expected outcomes: POST /v1/orders 201, or 409 `slot_full` (customers competing for a slot is
normal business); every other request 200. Anything else is a failure.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from locust import tag, task
from locust.contrib.fasthttp import ResponseContextManager

from . import counters
from .api import PickupUser, error_code, expect, order_body

CANCEL_SHARE = 0.2
RETRY_SHARE = 0.2  # orders whose POST is sent twice with the same Idempotency-Key


@tag("orders")
class OrderFlowUser(PickupUser):
    def on_start(self) -> None:
        self.stores = self.stores_to_visit()
        self.menus: dict[str, list[dict[str, Any]]] = {}
        self.staff_key = self.environment.parsed_options.staff_key

    @task
    def order_for_pickup(self) -> None:
        store = self.stores.pick()
        slot = self.choose_slot(store)
        if not self.menus.get(store["id"]):
            self.menus[store["id"]] = [item for item in self.menu(store["id"]) if item["available"]]
        menu = self.menus[store["id"]]
        if slot is None or not menu:
            return
        picked = random.sample(menu, k=min(len(menu), random.randint(1, 3)))
        lines = [(item["id"], random.randint(1, 2)) for item in picked]
        total = sum(item["price_cents"] * qty for item, (_, qty) in zip(picked, lines, strict=True))
        order = self.place(order_body(store["id"], slot["start"], lines), total)
        if order is None:
            return
        for _ in range(random.randint(1, 3)):
            self.wait()
            self.poll(order)
        if random.random() < CANCEL_SHARE:
            self.cancel(order)
        elif self.staff_key:
            self.hand_over(order)

    def choose_slot(self, store: dict[str, Any]) -> dict[str, Any] | None:
        # Skip the first bookable slot: it can pass its lead-time cut-off between listing and
        # booking. Choosing among the next few makes customers compete, as at lunchtime.
        slots = self.bookable_slots(store)[1:6] or self.bookable_slots(store, days_ahead=1)[1:6]
        return random.choice(slots) if slots else None

    def post_order(self, body: dict[str, Any], key: str, name: str) -> ResponseContextManager:
        return self.client.post(
            "/v1/orders",
            json=body,
            headers={"Idempotency-Key": key},
            name=name,
            catch_response=True,
        )

    def place(self, body: dict[str, Any], total: int) -> dict[str, Any] | None:
        key = str(uuid.uuid4())
        with self.post_order(body, key, "/v1/orders") as resp:
            order = expect(resp, 201, 409)
            if order is None:
                return None
            if resp.status_code == 409:
                if error_code(order) == "slot_full":
                    counters.count("orders.slot_full")
                else:
                    resp.failure(f"409 {error_code(order)}, expected slot_full")
                return None
            if problem := order_problem(order, body, total):
                resp.failure(problem)
                return None
            if resp.headers.get("Location") != f"/v1/orders/{order['id']}":
                resp.failure("Location does not name the new order")
            counters.count("orders.created")
        if random.random() < RETRY_SHARE:
            self.retry(body, key, order)
        return dict(order)

    def retry(self, body: dict[str, Any], key: str, first: dict[str, Any]) -> None:
        with self.post_order(body, key, "/v1/orders [idempotent retry]") as resp:
            replay = expect(resp, 201)
            if replay is None:
                return
            if replay.get("id") != first["id"] or resp.headers.get("Idempotent-Replayed") != "true":
                resp.failure("a retry with the same Idempotency-Key did not replay the first order")
            else:
                counters.count("orders.replayed")

    def as_customer(
        self, method: str, order: dict[str, Any], action: str = ""
    ) -> ResponseContextManager:
        """A request on `order` (or its `action`) with the order token its customer holds."""
        return self.client.request(
            method,
            f"/v1/orders/{order['id']}{action}",
            headers={"X-Order-Token": order["order_token"]},
            name=f"/v1/orders/[id]{action}",
            catch_response=True,
        )

    def poll(self, order: dict[str, Any]) -> None:
        with self.as_customer("GET", order) as resp:
            seen = expect(resp, 200)
            if seen is not None and seen.get("id") != order["id"]:
                resp.failure("answered with another order")

    def cancel(self, order: dict[str, Any]) -> None:
        with self.as_customer("POST", order, "/cancel") as resp:
            cancelled = expect(resp, 200)
            if cancelled is not None and cancelled.get("status") != "cancelled":
                resp.failure(f"status {cancelled.get('status')} after cancel")
            elif cancelled is not None:
                counters.count("orders.cancelled")

    def hand_over(self, order: dict[str, Any]) -> None:
        staff = {"Authorization": f"Bearer {self.staff_key}"}
        for status in ("accepted", "preparing", "ready"):
            if not self.staff_post(order, "status", {"status": status}, staff, status):
                return
        code = {"pickup_code": order["pickup_code"]}
        if self.staff_post(order, "pickup", code, staff, "picked_up"):
            counters.count("orders.picked_up")

    def staff_post(
        self,
        order: dict[str, Any],
        action: str,
        body: dict[str, str],
        staff: dict[str, str],
        expected_status: str,
    ) -> bool:
        with self.client.post(
            f"/v1/orders/{order['id']}/{action}",
            json=body,
            headers=staff,
            name=f"/v1/orders/[id]/{action}",
            catch_response=True,
        ) as resp:
            changed = expect(resp, 200)
            if changed is not None and changed.get("status") != expected_status:
                resp.failure(f"status {changed.get('status')}, expected {expected_status}")
                return False
            return changed is not None


def order_problem(order: dict[str, Any], body: dict[str, Any], total: int) -> str | None:
    if order.get("status") != "placed" or order.get("store_id") != body["store_id"]:
        return "a new order must be placed, at the store it was sent to"
    if order.get("total_cents") != total:
        return f"priced {order.get('total_cents')}, the menu says {total}"
    if not order.get("order_token") or len(str(order.get("pickup_code"))) != 6:
        return "no order token or six-digit pickup code"
    return None
