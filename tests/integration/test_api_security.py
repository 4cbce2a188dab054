"""Rate limits, CORS and security headers as a client of the assembled app sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.config import load_settings
from service.errors import ConfigError
from tests.factories import create_store, order_body
from tests.integration.test_api_orders import SLOT
from tests.unit.ratelimit.test_security_headers import API_HEADERS as SNAPSHOT


def placed_order(c: TestClient, staff: dict[str, str]) -> dict[str, Any]:
    """An order for one tea at a new store."""
    store = create_store(c, staff)
    item = c.post(
        f"/v1/stores/{store['id']}/menu",
        headers=staff,
        json={"name": "Tea", "category": "tea", "price_cents": 200, "currency": "GBP"},
    ).json()
    return dict(c.post("/v1/orders", json=order_body(store["id"], item["id"], SLOT)).json())


def ready_order(c: TestClient, staff: dict[str, str]) -> dict[str, Any]:
    """An order ready to hand over, as it was when placed."""
    order = placed_order(c, staff)
    for status in ("accepted", "preparing", "ready"):
        c.post(f"/v1/orders/{order['id']}/status", json={"status": status}, headers=staff)
    return order


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for response in (client.get("/v1/stores"), client.get("/nope"), client.post("/v1/orders")):
        assert {k: response.headers.get(k) for k in SNAPSHOT} == SNAPSHOT
        assert "strict-transport-security" not in response.headers
        assert "server" not in response.headers


def test_hsts_is_sent_only_in_production(make_client: Callable[..., TestClient]) -> None:
    prod = {
        "APP_ENV": "production",
        "PORT": "8080",
        "DATA_BACKEND": "json",
        "OPENAI_API_KEY": "sk-test-0123456789abcdef",
        # Production's secrets policy: random-looking, distinct, /metrics not anonymous.
        "ADMIN_TOKEN": "7f1c9e2ab85d4036be91c4d7a20f8e63",
        "METRICS_TOKEN": "Hq4vN8sLw2pXk7RtZ3mB",
    }
    with make_client(**prod) as c:
        hsts = c.get("/healthz").headers["strict-transport-security"]
    assert hsts == "max-age=31536000; includeSubDomains"


def test_the_default_limit_refuses_the_next_request_with_retry_after(
    make_client: Callable[..., TestClient],
) -> None:
    with make_client(RATE_LIMIT_ENABLED="true", RATE_LIMIT_MAX="3") as c:
        allowed = [c.get("/v1/stores") for _ in range(3)]
        refused = c.get("/v1/stores")
        health = [c.get(p).status_code for p in ("/healthz", "/readyz") for _ in range(10)]
    assert [r.headers["ratelimit"].split(", ")[1] for r in allowed] == [
        "remaining=2",
        "remaining=1",
        "remaining=0",
    ]
    assert allowed[0].headers["ratelimit-policy"] == "3;w=900"
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["x-frame-options"] == "DENY"
    assert set(health) == {200}


def test_pickup_code_guesses_are_limited_per_order_whoever_sends_them(
    make_client: Callable[..., TestClient], staff: dict[str, str]
) -> None:
    values = {"RATE_LIMIT_ENABLED": "true", "PICKUP_CODE_ATTEMPTS_MAX": "3", "TRUST_PROXY": "1"}
    with make_client(**values) as c:
        order = ready_order(c, staff)
        wrong = "000000" if order["pickup_code"] != "000000" else "111111"
        statuses = [
            c.post(
                f"/v1/orders/{order['id']}/pickup",
                json={"pickup_code": wrong},
                headers={**staff, "X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(4)
        ]
        # Even the right code waits out the window once the budget is spent.
        right = c.post(
            f"/v1/orders/{order['id']}/pickup",
            json={"pickup_code": order["pickup_code"]},
            headers=staff,
        )
    assert statuses == [403, 403, 403, 429]
    assert right.status_code == 429


def test_cors_allows_listed_origins_only(make_client: Callable[..., TestClient]) -> None:
    origin = "https://app.example.com"
    with make_client(CORS_ORIGINS=origin) as c:
        preflight = c.options(
            "/v1/orders",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,idempotency-key,x-order-token",
            },
        )
        simple = c.get("/v1/stores", headers={"Origin": origin})
        stranger = c.options(
            "/v1/orders",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
            },
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in preflight.headers
    assert "ratelimit" in simple.headers["access-control-expose-headers"].lower()
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers


def test_invalid_proxy_and_cors_settings_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {"TRUSTED_PROXIES": "10.0.0.0/8,not-a-cidr", "CORS_ORIGINS": "app.example.com"}
        )
    assert {p.split(":")[0] for p in caught.value.problems} == {"TRUSTED_PROXIES", "CORS_ORIGINS"}


def test_the_pickup_code_is_shown_to_the_customer_and_never_to_staff(
    make_client: Callable[..., TestClient], staff: dict[str, str]
) -> None:
    with make_client() as c:
        created = placed_order(c, staff)
        path = f"/v1/orders/{created['id']}"
        customer = c.get(path, headers={"X-Order-Token": created["order_token"]}).json()
        staff_read = c.get(path, headers=staff).json()
        listed = c.get(f"/v1/stores/{created['store_id']}/orders", headers=staff).json()["items"]
        accepted = c.post(f"{path}/status", json={"status": "accepted"}, headers=staff).json()
        spec = c.get("/openapi.json").json()["components"]["schemas"]
    assert len(created["pickup_code"]) == 6
    assert customer["pickup_code"] == created["pickup_code"]
    assert "pickup_code" not in staff_read and staff_read["id"] == created["id"]
    assert [o["id"] for o in listed] == [created["id"]]
    assert all("pickup_code" not in o for o in listed)
    assert "pickup_code" not in accepted
    assert "pickup_code" not in spec["OrderOut"]["properties"]
    documented = spec["OrderViewOut"]["properties"]["pickup_code"]["description"]
    assert "only to the customer" in documented


def test_anonymous_or_malformed_pickup_posts_do_not_spend_the_orders_attempts(
    make_client: Callable[..., TestClient], staff: dict[str, str]
) -> None:
    values = {"RATE_LIMIT_ENABLED": "true", "PICKUP_CODE_ATTEMPTS_MAX": "3"}
    with make_client(**values) as c:
        order = ready_order(c, staff)
        path = f"/v1/orders/{order['id']}/pickup"
        wrong = "000000" if order["pickup_code"] != "000000" else "111111"
        anonymous = [c.post(path, json={"pickup_code": wrong}).status_code for _ in range(5)]
        malformed = [
            c.post(path, json={"pickup_code": bad}, headers=staff).status_code
            for bad in ("12", "abcdef", "1234567", "", "12 456")
        ]
        handed_over = c.post(path, json={"pickup_code": order["pickup_code"]}, headers=staff)
    assert anonymous == [401] * 5
    assert malformed == [422] * 5
    assert handed_over.status_code == 200 and handed_over.json()["status"] == "picked_up"


def test_with_the_limiter_storage_down_the_pickup_guard_counts_attempts_in_process(
    make_client: Callable[..., TestClient], staff: dict[str, str]
) -> None:
    values = {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_FAIL_OPEN": "true",
        "REDIS_URL": "redis://127.0.0.1:9/0",  # the discard port: nothing answers
        "PICKUP_CODE_ATTEMPTS_MAX": "3",
    }
    with make_client(**values) as c:
        guessed, collected = ready_order(c, staff), ready_order(c, staff)
        assert guessed["status"] == "placed"  # the general limiter failed open
        path = f"/v1/orders/{guessed['id']}/pickup"
        wrong = "000000" if guessed["pickup_code"] != "000000" else "111111"
        guesses = [
            c.post(path, json={"pickup_code": wrong}, headers=staff).status_code for _ in range(3)
        ]
        after_budget = c.post(path, json={"pickup_code": guessed["pickup_code"]}, headers=staff)
        status = c.get(f"/v1/orders/{guessed['id']}", headers=staff).json()["status"]
        handed_over = c.post(
            f"/v1/orders/{collected['id']}/pickup",
            json={"pickup_code": collected["pickup_code"]},
            headers=staff,
        )
    assert guesses == [403] * 3
    assert after_budget.status_code == 429  # still counted, though Redis cannot count
    assert after_budget.json()["error"]["code"] == "rate_limited"
    assert status == "ready"  # nothing was handed over past the budget
    assert handed_over.status_code == 200  # customers still collect during the outage
    assert handed_over.json()["status"] == "picked_up"
