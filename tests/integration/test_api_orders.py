from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient

from service.http import schemas
from tests.factories import NOW, order_body

SLOT = NOW + timedelta(hours=2)


def place(client: TestClient, shop: dict[str, Any], **changes: Any) -> Any:
    headers = changes.pop("headers", {})
    body = order_body(shop["store"]["id"], shop["item"]["id"], SLOT, **changes)
    return client.post("/v1/orders", json=body, headers=headers)


def test_placing_an_order_returns_it_with_code_token_and_location(
    client: TestClient, shop: dict[str, Any]
) -> None:
    response = place(client, shop)
    assert response.status_code == 201, response.text
    order = schemas.OrderCreatedOut.model_validate(response.json())
    assert response.headers["location"] == f"/v1/orders/{order.id}"
    assert order.total_cents == 690 and order.currency == "GBP"
    assert order.status == "placed" and len(order.pickup_code) == 6
    assert order.pickup_slot_start == SLOT


def test_the_server_prices_orders_from_the_current_menu(
    client: TestClient, shop: dict[str, Any]
) -> None:
    body = order_body(shop["store"]["id"], shop["item"]["id"], SLOT)
    body["items"][0]["price_cents"] = 1
    assert client.post("/v1/orders", json=body).status_code == 422  # no client-side prices


def test_customer_reads_and_cancels_with_the_order_token(
    client: TestClient, shop: dict[str, Any]
) -> None:
    created = place(client, shop).json()
    url = f"/v1/orders/{created['id']}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-Order-Token": "guess"}).status_code == 403
    mine = {"X-Order-Token": created["order_token"]}
    fetched = client.get(url, headers=mine)
    assert fetched.status_code == 200 and "order_token" not in fetched.json()
    schemas.OrderViewOut.model_validate(fetched.json())  # the declared answer of GET
    assert fetched.json()["pickup_code"] == created["pickup_code"]
    cancelled = client.post(f"{url}/cancel", headers=mine)
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"{url}/cancel", headers=mine)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"


def test_staff_move_an_order_to_pickup_with_the_code(
    client: TestClient, shop: dict[str, Any], staff: dict[str, str]
) -> None:
    created = place(client, shop).json()
    url = f"/v1/orders/{created['id']}"
    for status in ("accepted", "preparing", "ready"):
        response = client.post(f"{url}/status", json={"status": status}, headers=staff)
        assert response.json()["status"] == status
    customer_cancel = client.post(
        f"{url}/cancel", headers={"X-Order-Token": created["order_token"]}
    )
    assert customer_cancel.status_code == 409
    wrong = client.post(
        f"{url}/pickup",
        json={"pickup_code": "000000" if created["pickup_code"] != "000000" else "111111"},
        headers=staff,
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_pickup_code"
    done = client.post(f"{url}/pickup", json={"pickup_code": created["pickup_code"]}, headers=staff)
    assert done.json()["status"] == "picked_up"
    assert [h["status"] for h in done.json()["history"]] == [
        "placed",
        "accepted",
        "preparing",
        "ready",
        "picked_up",
    ]


def test_illegal_transitions_are_409(
    client: TestClient, shop: dict[str, Any], staff: dict[str, str]
) -> None:
    created = place(client, shop).json()
    response = client.post(
        f"/v1/orders/{created['id']}/status", json={"status": "ready"}, headers=staff
    )
    assert response.status_code == 409
    assert response.json()["error"]["details"]["allowed"] == ["accepted", "cancelled", "rejected"]


def test_customers_cannot_use_staff_endpoints(client: TestClient, shop: dict[str, Any]) -> None:
    created = place(client, shop).json()
    token = {"X-Order-Token": created["order_token"]}
    response = client.post(
        f"/v1/orders/{created['id']}/status", json={"status": "accepted"}, headers=token
    )
    assert response.status_code == 401


def test_idempotent_retries_return_the_first_order(
    client: TestClient, shop: dict[str, Any]
) -> None:
    key = {"Idempotency-Key": "checkout-42"}
    first = place(client, shop, headers=key)
    retry = place(client, shop, headers=key)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    different = place(client, shop, headers=key, note="extra hot")
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_key_reused"


def test_a_full_slot_is_409_and_other_slots_still_book(
    client: TestClient, shop: dict[str, Any]
) -> None:
    assert [place(client, shop).status_code for _ in range(3)] == [201, 201, 409]
    full = place(client, shop)
    assert full.json()["error"]["code"] == "slot_full"
    later = order_body(shop["store"]["id"], shop["item"]["id"], SLOT + timedelta(minutes=15))
    assert client.post("/v1/orders", json=later).status_code == 201
    slots = client.get(
        f"/v1/stores/{shop['store']['id']}/slots", params={"date": "2026-12-01"}
    ).json()
    by_start = {s["start"]: s for s in slots["items"]}
    assert by_start[SLOT.isoformat()]["remaining"] == 0
    assert by_start[SLOT.isoformat()]["bookable"] is False


def test_capacity_holds_under_concurrent_requests(client: TestClient, shop: dict[str, Any]) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: place(client, shop).status_code, range(30)))
    assert statuses.count(201) == 2 and statuses.count(409) == 28


def test_orders_for_a_closed_store_are_refused(
    client: TestClient, shop: dict[str, Any], staff: dict[str, str]
) -> None:
    client.patch(
        f"/v1/stores/{shop['store']['id']}", json={"accepting_orders": False}, headers=staff
    )
    response = place(client, shop)
    assert (
        response.status_code == 409
        and response.json()["error"]["code"] == "store_not_accepting_orders"
    )


def test_staff_list_a_stores_orders_by_status_and_date(
    client: TestClient, shop: dict[str, Any], staff: dict[str, str]
) -> None:
    ids = [place(client, shop).json()["id"] for _ in range(2)]
    client.post(f"/v1/orders/{ids[0]}/status", json={"status": "accepted"}, headers=staff)
    url = f"/v1/stores/{shop['store']['id']}/orders"
    placed = client.get(
        url, params={"status": "placed", "date": "2026-12-01"}, headers=staff
    ).json()
    assert [o["id"] for o in placed["items"]] == [ids[1]]
    schemas.OrderList.model_validate(placed)
    assert client.get(url, params={"date": "2026-12-02"}, headers=staff).json()["items"] == []
    assert client.get(url, params={"status": "lost"}, headers=staff).status_code == 422


def test_business_events_are_logged_without_personal_data(
    client: TestClient, shop: dict[str, Any], staff: dict[str, str]
) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logged:
        created = place(client, shop).json()
        url = f"/v1/orders/{created['id']}"
        for status in ("accepted", "preparing", "ready"):
            client.post(f"{url}/status", json={"status": status}, headers=staff)
        wrong = "000000" if created["pickup_code"] != "000000" else "111111"
        client.post(f"{url}/pickup", json={"pickup_code": wrong}, headers=staff)
    mine = [e for e in logged if e.get("order_id") == created["id"]]
    events = {e["event"]: e for e in mine}
    assert {"order_placed", "order_status_changed", "pickup_code_refused"} <= set(events)
    assert events["order_placed"]["total_cents"] == created["total_cents"]
    changes = [e["status"] for e in mine if e["event"] == "order_status_changed"]
    assert changes == ["accepted", "preparing", "ready"]
    said = repr(mine)
    customer = order_body(shop["store"]["id"], shop["item"]["id"], SLOT)["customer"]
    for private in (customer["name"], customer["phone"], created["pickup_code"], wrong):
        assert private not in said
