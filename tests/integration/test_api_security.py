"""Rate limits, CORS and security headers as a client of the assembled app sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.config import load_settings
from service.errors import ConfigError
from tests.factories import create_store, order_body
from tests.integration.test_api_orders import SLOT

SNAPSHOT = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "origin-agent-cluster": "?1",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-dns-prefetch-control": "off",
    "x-frame-options": "DENY",
    "x-permitted-cross-domain-policies": "none",
    "x-xss-protection": "0",
}


def app_client(make_settings: Callable[..., Any], clock: Any, **values: str) -> TestClient:
    return TestClient(create_app(make_settings(**values), clock=clock))


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for response in (client.get("/v1/stores"), client.get("/nope"), client.post("/v1/orders")):
        assert {k: response.headers.get(k) for k in SNAPSHOT} == SNAPSHOT
        assert "strict-transport-security" not in response.headers
        assert "server" not in response.headers


def test_hsts_is_sent_only_in_production(make_settings: Callable[..., Any], clock: Any) -> None:
    prod = {
        "APP_ENV": "production",
        "PORT": "8080",
        "DATA_BACKEND": "json",
        "OPENAI_API_KEY": "sk-test-0123456789abcdef",
        # Production's secrets policy: random-looking, distinct, /metrics not anonymous.
        "ADMIN_TOKEN": "7f1c9e2ab85d4036be91c4d7a20f8e63",
        "METRICS_TOKEN": "Hq4vN8sLw2pXk7RtZ3mB",
    }
    with app_client(make_settings, clock, **prod) as c:
        hsts = c.get("/healthz").headers["strict-transport-security"]
    assert hsts == "max-age=31536000; includeSubDomains"


def test_the_default_limit_refuses_the_next_request_with_retry_after(
    make_settings: Callable[..., Any], clock: Any
) -> None:
    with app_client(make_settings, clock, RATE_LIMIT_ENABLED="true", RATE_LIMIT_MAX="3") as c:
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
    make_settings: Callable[..., Any], clock: Any, staff: dict[str, str]
) -> None:
    values = {"RATE_LIMIT_ENABLED": "true", "PICKUP_CODE_ATTEMPTS_MAX": "3", "TRUST_PROXY": "1"}
    with app_client(make_settings, clock, **values) as c:
        store = create_store(c, staff)
        item = c.post(
            f"/v1/stores/{store['id']}/menu",
            headers=staff,
            json={"name": "Tea", "category": "tea", "price_cents": 200, "currency": "GBP"},
        ).json()
        order = c.post("/v1/orders", json=order_body(store["id"], item["id"], SLOT)).json()
        for status in ("accepted", "preparing", "ready"):
            c.post(f"/v1/orders/{order['id']}/status", json={"status": status}, headers=staff)
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


def test_cors_allows_listed_origins_only(make_settings: Callable[..., Any], clock: Any) -> None:
    origin = "https://app.example.com"
    with app_client(make_settings, clock, CORS_ORIGINS=origin) as c:
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
