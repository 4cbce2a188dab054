"""Every client mistake is a 4xx with a JSON body that says what was wrong."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.factories import NOW, new_id, order_body
from tests.integration.test_api_orders import SLOT

pytestmark = pytest.mark.usefixtures("shop")


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return dict(error)


def post_raw(client: TestClient, content: bytes, content_type: str = "application/json") -> Any:
    return client.post("/v1/orders", content=content, headers={"Content-Type": content_type})


def test_malformed_json_is_400(client: TestClient) -> None:
    assert_error(post_raw(client, b'{"store_id": '), 400, "malformed_request")


def test_an_empty_body_is_400(client: TestClient) -> None:
    assert_error(post_raw(client, b""), 400, "malformed_request")


def test_invalid_utf8_is_400(client: TestClient) -> None:
    assert_error(post_raw(client, b'{"note": "\xff\xfe"}'), 400, "malformed_request")


def test_deeply_nested_json_is_refused_cleanly(client: TestClient) -> None:
    response = post_raw(client, b"[" * 5000 + b"]" * 5000)
    assert response.status_code in (400, 422)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_non_json_content_types_are_415(client: TestClient, content_type: str) -> None:
    assert_error(post_raw(client, b"{}", content_type), 415, "unsupported_media_type")


def test_bodies_over_the_limit_are_413_without_being_read(client: TestClient) -> None:
    response = post_raw(client, b" " * 70_000)
    assert_error(response, 413, "payload_too_large")


def test_streamed_bodies_over_the_limit_are_413(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b" " * 8192

    response = client.post(
        "/v1/orders", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def test_validation_errors_name_each_field(client: TestClient, shop: dict[str, Any]) -> None:
    body = order_body(shop["store"]["id"], shop["item"]["id"], SLOT)
    body["items"][0]["quantity"] = -1
    body["customer"]["phone"] = "call me"
    body["surprise"] = True
    error = assert_error(client.post("/v1/orders", json=body), 422, "validation_failed")
    fields = {d["field"] for d in error["details"]}
    assert fields == {"items.0.quantity", "customer.phone", "surprise"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"items": []}, "items"),
        ({"pickup_slot_start": "2026-12-01T10:00:00"}, "pickup_slot_start"),  # no offset
        ({"pickup_slot_start": "soon"}, "pickup_slot_start"),
        ({"store_id": "../../etc/passwd"}, "store_id"),
        ({"note": "x" * 501}, "note"),
        ({"customer": {"name": "", "phone": "+447700900123"}}, "customer.name"),
    ],
)
def test_bad_fields_are_422(
    client: TestClient, shop: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    body = {**order_body(shop["store"]["id"], shop["item"]["id"], SLOT), **change}
    error = assert_error(client.post("/v1/orders", json=body), 422)
    assert field in {d["field"] for d in error["details"]}


def test_huge_numbers_are_422(client: TestClient, shop: dict[str, Any]) -> None:
    body = order_body(shop["store"]["id"], shop["item"]["id"], SLOT)
    raw = post_raw(
        client,
        str(body).replace("'", '"').replace('"quantity": 2', '"quantity": 1' + "0" * 40).encode(),
    )
    assert raw.status_code in (400, 422)


def test_strings_are_not_silently_coerced_to_numbers(
    client: TestClient, shop: dict[str, Any]
) -> None:
    body = order_body(shop["store"]["id"], shop["item"]["id"], SLOT)
    body["items"][0]["quantity"] = "2"
    assert_error(client.post("/v1/orders", json=body), 422)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (timedelta(hours=2, minutes=5), "not the start"),
        (timedelta(days=-2), "at least"),
        (timedelta(minutes=0), "at least"),
    ],
)
def test_past_or_misaligned_slots_are_422_with_the_reason(
    client: TestClient,
    shop: dict[str, Any],
    offset: timedelta,
    message: str,
) -> None:
    body = order_body(shop["store"]["id"], shop["item"]["id"], NOW + offset)
    error = assert_error(client.post("/v1/orders", json=body), 422)
    assert message in error["message"]


def test_unknown_store_is_404_and_unknown_item_is_422(
    client: TestClient, shop: dict[str, Any]
) -> None:
    assert_error(
        client.post("/v1/orders", json=order_body(new_id(), shop["item"]["id"], SLOT)), 404
    )
    error = assert_error(
        client.post("/v1/orders", json=order_body(shop["store"]["id"], new_id(), SLOT)), 422
    )
    assert error["details"][0]["field"] == "items.0.menu_item_id"


def test_bad_idempotency_keys_are_422(client: TestClient, shop: dict[str, Any]) -> None:
    body = order_body(shop["store"]["id"], shop["item"]["id"], SLOT)
    response = client.post("/v1/orders", json=body, headers={"Idempotency-Key": "k" * 300})
    assert_error(response, 422)


def test_malformed_authorization_is_401(client: TestClient, shop: dict[str, Any]) -> None:
    for value in ("Basic abc", "Bearer", "Bearer    "):
        response = client.get(
            f"/v1/stores/{shop['store']['id']}/orders", headers={"Authorization": value}
        )
        assert_error(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"
