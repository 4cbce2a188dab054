from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from service.app import ENDPOINTS
from service.http import schemas
from tests.factories import STORE_BODY, create_store


def test_health_and_readiness_answer_without_credentials(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == {"status": "ok", "backend": "json"}


def test_stores_are_paginated_with_an_opaque_cursor(
    client: TestClient, staff: dict[str, str]
) -> None:
    created = {create_store(client, staff, name=f"Store {i}")["id"] for i in range(5)}
    first = client.get("/v1/stores?limit=2").json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [s["id"] for s in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/v1/stores", params={"limit": 2, "cursor": cursor}).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(created)


def test_a_tampered_cursor_is_a_clear_422(client: TestClient) -> None:
    response = client.get("/v1/stores?cursor=not-a-cursor!!")
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "cursor"


def test_store_menu_and_slots_follow_the_documented_wire_format(
    client: TestClient, staff: dict[str, str]
) -> None:
    store = create_store(client, staff)
    schemas.StoreOut.model_validate(client.get(f"/v1/stores/{store['id']}").json())
    item = client.post(
        f"/v1/stores/{store['id']}/menu",
        json={"name": "Latte", "category": "coffee", "price_cents": 395, "currency": "GBP"},
        headers=staff,
    ).json()
    menu = schemas.MenuList.model_validate(client.get(f"/v1/stores/{store['id']}/menu").json())
    assert [i.name for i in menu.items] == ["Latte"] and str(menu.items[0].id) == item["id"]
    slots = client.get(f"/v1/stores/{store['id']}/slots", params={"date": "2026-12-01"})
    parsed = schemas.SlotList.model_validate(slots.json())
    assert len(parsed.items) == 13 * 4
    first = slots.json()["items"][0]
    assert first["start"] == "2026-12-01T07:00:00+00:00" and first["bookable"] is False
    assert (
        next(s for s in parsed.items if s.bookable).start.isoformat() == "2026-12-01T08:15:00+00:00"
    )


def test_slots_need_a_valid_date(client: TestClient, staff: dict[str, str]) -> None:
    store = create_store(client, staff)
    for query in ("", "?date=2026-13-01", "?date=tomorrow"):
        response = client.get(f"/v1/stores/{store['id']}/slots{query}")
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "date"


def test_unknown_and_malformed_ids_are_404_with_the_error_envelope(client: TestClient) -> None:
    for path in (
        "/v1/stores/7b0e7c1e-7a1e-4c1e-9a1e-7a1e7a1e7a1e",
        "/v1/stores/..%2F..%2Fetc",
        "/v1/stores/1%20OR%201=1/menu",
        "/v1/orders/abc",
    ):
        response = client.get(path)
        assert response.status_code in (401, 404), path
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_unknown_routes_and_wrong_methods_get_json_errors(client: TestClient) -> None:
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.delete("/v1/stores")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_every_route_is_documented_and_every_documented_route_exists(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = {
        (method, route.path)
        for route in client.app.routes  # type: ignore[attr-defined]
        for method in (route.methods or ()) - {"HEAD"}
    }
    assert documented == served
    assert {(ep.method, ep.path) for ep in ENDPOINTS} <= served
    assert {("GET", "/openapi.json"), ("GET", "/metrics")} <= served
    for path, ops in spec["paths"].items():
        for op in ops.values():
            for response in op["responses"].values():
                ref = (
                    response.get("content", {})
                    .get("application/json", {})
                    .get("schema", {})
                    .get("$ref")
                )
                if ref:
                    assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"], (path, ref)


def test_staff_endpoints_need_a_key_and_respect_store_scope(make_settings: Any, clock: Any) -> None:
    from service.app import create_app
    from tests.factories import STAFF_KEY

    scoped = "scoped-key-for-one-store-000001"
    with TestClient(create_app(make_settings(), clock=clock)) as c:
        global_staff = {"Authorization": f"Bearer {STAFF_KEY}"}
        store = create_store(c, global_staff)
        other = create_store(c, global_staff, name="Other")
    settings = make_settings(STAFF_API_KEYS=f"{STAFF_KEY},{store['id']}:{scoped}")
    with TestClient(create_app(settings, clock=clock)) as c:
        mine = {"Authorization": f"Bearer {scoped}"}
        assert c.post("/v1/stores", json=STORE_BODY).status_code == 401
        assert (
            c.post(
                "/v1/stores", json=STORE_BODY, headers={"Authorization": "Bearer wrong-key"}
            ).status_code
            == 401
        )
        assert c.post("/v1/stores", json=STORE_BODY, headers=mine).status_code == 403
        assert (
            c.patch(f"/v1/stores/{store['id']}", json={"name": "Mine"}, headers=mine).status_code
            == 200
        )
        denied = c.patch(f"/v1/stores/{other['id']}", json={"name": "Theirs"}, headers=mine)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        assert c.get(f"/v1/stores/{other['id']}/orders", headers=mine).status_code == 403
        assert c.get(f"/v1/stores/{store['id']}/orders", headers=mine).status_code == 200


def test_store_updates_are_validated_and_applied(client: TestClient, staff: dict[str, str]) -> None:
    store = create_store(client, staff)
    bad = client.patch(
        f"/v1/stores/{store['id']}", json={"timezone": "Mars/Olympus"}, headers=staff
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "timezone"
    hours = client.patch(
        f"/v1/stores/{store['id']}",
        json={"opening_hours": {"mon": [{"opens": "10:00", "closes": "09:00"}]}},
        headers=staff,
    )
    assert hours.status_code == 422
    ok = client.patch(f"/v1/stores/{store['id']}", json={"accepting_orders": False}, headers=staff)
    assert ok.json()["accepting_orders"] is False
    assert client.get(f"/v1/stores/{store['id']}").json()["accepting_orders"] is False
