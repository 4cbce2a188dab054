"""Edges a client or an attacker reaches through the assembled app: what a 500 carries, slash
redirects, who learns whether an order exists, and input that must never become a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from service.app import ENDPOINTS, create_app
from service.http import schemas
from service.http.endpoint import Endpoint
from tests.factories import STORE_BODY, create_store, new_id
from tests.integration.test_api_orders import place
from tests.integration.test_api_security import SNAPSHOT


async def broken_endpoint(request: Request) -> Response:
    raise RuntimeError("a bug in a handler")


def test_an_unexpected_error_answers_500_with_every_header_of_a_normal_answer(
    make_settings: Callable[..., Any], clock: Any
) -> None:
    app = create_app(make_settings(METRICS_ENABLED="true"), clock=clock)
    app.router.routes.append(Route("/broken", broken_endpoint))
    with TestClient(app, raise_server_exceptions=False) as c:
        answer = c.get("/broken", headers={"X-Request-ID": "trace-me-123"})
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "a bug" not in answer.text
    assert {k: answer.headers.get(k) for k in SNAPSHOT} == SNAPSHOT
    assert answer.headers["x-request-id"] == "trace-me-123"


def test_a_trailing_slash_is_not_redirected_to_a_host_the_client_chose(
    client: TestClient,
) -> None:
    answer = client.get("/v1/stores/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert "evil.example" not in answer.headers.get("location", "")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def path_for(template: str, ids: dict[str, str]) -> str:
    return template.format_map(ids)


@pytest.mark.parametrize(
    "endpoint",
    [ep for ep in ENDPOINTS if ep.auth != "public" and "{" in ep.path],
    ids=lambda ep: f"{ep.method} {ep.path}",
)
@pytest.mark.parametrize("credential", [{}, {"X-Order-Token": "not-the-token-of-any-order"}])
def test_without_valid_credentials_a_known_id_and_an_unknown_id_answer_alike(
    endpoint: Endpoint,
    credential: dict[str, str],
    client: TestClient,
    shop: dict[str, Any],
) -> None:
    order = place(client, shop).json()
    known = {
        "order_id": order["id"],
        "store_id": shop["store"]["id"],
        "item_id": shop["item"]["id"],
    }
    unknown = {name: new_id() for name in known}
    answers = [
        client.request(endpoint.method, path_for(endpoint.path, ids), headers=credential)
        for ids in (known, unknown)
    ]
    assert answers[0].status_code == answers[1].status_code, [a.text for a in answers]
    assert answers[0].json()["error"]["code"] == answers[1].json()["error"]["code"]
    assert answers[0].status_code in (401, 403)


@pytest.mark.parametrize(
    "zone", ["America", "America/", "Europe", "localtime", "../Europe/London", "Etc", "x" * 64]
)
def test_a_time_zone_that_is_no_zone_is_422(
    zone: str, client: TestClient, staff: dict[str, str]
) -> None:
    answer = client.post("/v1/stores", json={**STORE_BODY, "timezone": zone}, headers=staff)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "timezone"


HOSTILE_TEXT = {
    "bidi override": "Cafe \u202eetisoppo",
    "bidi isolate": "\u2067Cafe",
    "zero-width only": "\u200b\u200c\u200d\u2060\ufeff",
    "whitespace only": "   ",
    "hangul filler only": "\u3164",
    "control character": "Cafe\x07",
    "escape sequence": "\x1b[31mCafe",
    "line separator": "Cafe\u2028Bar",
    "newline in a name": "Cafe\nBar",
}


@pytest.mark.parametrize("text", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
@pytest.mark.parametrize("field", ["name", "address"])
def test_store_text_a_person_could_not_read_back_is_422(
    field: str, text: str, client: TestClient, staff: dict[str, str]
) -> None:
    answer = client.post("/v1/stores", json={**STORE_BODY, field: text}, headers=staff)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == field


@pytest.mark.parametrize("text", [t for k, t in HOSTILE_TEXT.items() if k != "newline in a name"])
def test_order_notes_and_customer_names_refuse_the_same_text(
    text: str, client: TestClient, shop: dict[str, Any]
) -> None:
    assert place(client, shop, note=text).status_code == 422
    customer = {"name": text, "phone": "+44 7700 900123"}
    assert place(client, shop, customer=customer).status_code == 422


def test_ordinary_text_with_accents_emoji_and_a_multiline_note_is_accepted(
    client: TestClient, shop: dict[str, Any]
) -> None:
    customer = {"name": "Zoë Ñúñez 👩\u200d🍳", "phone": "+44 7700 900123"}
    answer = place(client, shop, note="no sugar\nextra hot", customer=customer)
    assert answer.status_code == 201, answer.text


def test_every_free_text_field_of_every_request_model_uses_the_text_type() -> None:
    # A new request field that takes a string must say what it takes: a pattern, or Text.
    for model in vars(schemas).values():
        if not (isinstance(model, type) and issubclass(model, schemas.Input)):
            continue
        for name, field in model.model_fields.items():
            declared = repr(field.annotation) + repr(field.metadata)
            if "str" not in declared or name == "timezone":  # zones: checked by membership
                continue
            assert "pattern=" in declared or "_human_text" in declared, (
                f"{model.__name__}.{name} takes any string"
            )


@pytest.mark.parametrize(
    "cursor",
    [
        "MjAyNi0xMi0wMVQxMjowMDowMHwwYjZjNWY2NC02YTQyLTRhOGItOWEyZS0wZjFiMmMzZDRlNWY",
        "!!!!",
        "eHx5",
    ],
)
def test_a_crafted_cursor_is_422_with_the_envelope(
    cursor: str, client: TestClient, staff: dict[str, str], shop: dict[str, Any]
) -> None:
    store_id = shop["store"]["id"]
    for path in (f"/v1/stores/{store_id}/orders", "/v1/stores"):
        answer = client.get(path, params={"cursor": cursor}, headers=staff)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == "cursor"


def test_one_phone_cannot_hoard_a_stores_slots(
    make_settings: Callable[..., Any], clock: Any, staff: dict[str, str]
) -> None:
    with TestClient(create_app(make_settings(MAX_LIVE_ORDERS_PER_PHONE="2"), clock=clock)) as c:
        store = create_store(c, staff, slot_capacity=10)
        item = c.post(
            f"/v1/stores/{store['id']}/menu",
            json={"name": "Tea", "category": "tea", "price_cents": 200, "currency": "GBP"},
            headers=staff,
        ).json()
        shop = {"store": store, "item": item}
        assert [place(c, shop).status_code for _ in range(2)] == [201, 201]
        refused = place(c, shop)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "too_many_live_orders"
        other = {"name": "Grace", "phone": "+44 7700 900456"}
        assert place(c, shop, customer=other).status_code == 201
