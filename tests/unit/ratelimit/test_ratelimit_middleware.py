from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from service.ratelimit import (
    ClientIdentity,
    Limiter,
    RateLimit,
    RateLimitMiddleware,
    RoutePolicy,
    by_path_param,
)

HOUR = 3600
# Nothing listens on port 1: every storage call fails at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


def make_client(limiter: Limiter, **options: Any) -> TestClient:
    app = Starlette(
        routes=[
            Route("/v1/menu", ok),
            Route("/v1/orders", ok, methods=["POST"]),
            Route("/v1/orders/{order_id}/pickup", ok, methods=["POST"]),
            Route("/v1/stores/{store_id}/recommendations", ok, methods=["POST"]),
            Route("/healthz", ok),
            Route("/metrics", ok),
        ],
        middleware=[
            Middleware(
                RateLimitMiddleware,
                limiter=limiter,
                **{"default_policy": RateLimit(5, HOUR), **options},
            )
        ],
    )
    return TestClient(app)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client(Limiter("memory://")) as client:
        yield client


def rate_limit_header(response: Any) -> dict[str, int]:
    # TestClient's response type comes from httpx2 in this Starlette; only .headers matters here.
    fields = dict(part.split("=") for part in response.headers["RateLimit"].split(", "))
    return {name: int(value) for name, value in fields.items()}


@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter", "moving-window"])
def test_every_strategy_allows_exactly_the_limit_then_refuses(strategy: Any) -> None:
    with make_client(Limiter("memory://", strategy=strategy)) as client:
        statuses = [client.get("/v1/menu").status_code for _ in range(8)]

    assert statuses == [200] * 5 + [429] * 3


def test_an_unknown_strategy_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rate-limit strategy"):
        Limiter("memory://", strategy="token-bucket")  # type: ignore[arg-type]


def test_an_unsupported_storage_uri_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported rate-limit storage"):
        Limiter("memcached://127.0.0.1:11211")


def test_a_refused_request_gets_429_retry_after_and_the_error_envelope(client: TestClient) -> None:
    for _ in range(5):
        client.get("/v1/menu")

    response = client.get("/v1/menu")

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= HOUR
    assert response.json() == {
        "error": {
            "code": "rate_limited",
            "message": f"too many requests; retry after {retry_after} s",
            "details": {"limit": 5, "window_s": HOUR, "retry_after_s": retry_after},
        }
    }
    assert rate_limit_header(response)["remaining"] == 0


def test_draft_7_headers_count_down_as_hits_happen(client: TestClient) -> None:
    responses = [client.get("/v1/menu") for _ in range(5)]

    assert {r.headers["RateLimit-Policy"] for r in responses} == {"5;w=3600"}
    assert [rate_limit_header(r)["remaining"] for r in responses] == [4, 3, 2, 1, 0]
    assert {rate_limit_header(r)["limit"] for r in responses} == {5}
    assert all(0 <= rate_limit_header(r)["reset"] <= HOUR for r in responses)


def test_draft_8_headers_name_the_policy() -> None:
    with make_client(Limiter("memory://", strategy="fixed-window"), headers="draft-8") as client:
        response = client.get("/v1/menu")

    assert response.headers["RateLimit-Policy"] == '"5-in-1h"; q=5; w=3600'
    match = re.fullmatch(r'"5-in-1h"; r=4; t=(\d+)', response.headers["RateLimit"])
    assert match is not None
    assert 0 < int(match[1]) <= HOUR


def test_headers_describe_the_most_restrictive_policy_that_applied() -> None:
    orders = RoutePolicy("POST", "/v1/orders", RateLimit(2, 60))
    with make_client(Limiter("memory://"), route_policies=[orders]) as client:
        order = client.post("/v1/orders")
        menu = client.get("/v1/menu")
        client.post("/v1/orders")
        refused = client.post("/v1/orders")
        menu_after = client.get("/v1/menu")

    assert order.headers["RateLimit-Policy"] == "2;w=60"
    assert rate_limit_header(order)["remaining"] == 1
    assert menu.headers["RateLimit-Policy"] == "5;w=3600"
    assert rate_limit_header(menu)["remaining"] == 3
    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["limit"] == 2
    assert refused.json()["error"]["details"]["window_s"] == 60
    assert menu_after.status_code == 200


def test_route_limits_apply_in_addition_to_the_default_limit() -> None:
    generous = RoutePolicy("POST", "/v1/orders", RateLimit(100, 60))
    with make_client(Limiter("memory://"), route_policies=[generous]) as client:
        statuses = [client.post("/v1/orders").status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]


def test_a_route_policy_applies_only_to_its_method() -> None:
    orders = RoutePolicy("POST", "/v1/orders", RateLimit(1, 60))
    with make_client(Limiter("memory://"), route_policies=[orders]) as client:
        client.post("/v1/orders")
        refused_post = client.post("/v1/orders")
        get = client.get("/v1/orders")  # 405 from the app, not a rate-limit refusal

    assert refused_post.status_code == 429
    assert get.status_code == 405


def test_route_policies_accept_regex_paths_and_plain_tuples() -> None:
    policy = (
        "POST",
        re.compile(r"/v1/stores/(?P<store_id>[^/]+)/recommendations"),
        RateLimit(1, 60),
    )
    with make_client(Limiter("memory://"), route_policies=[policy]) as client:
        first = client.post("/v1/stores/s1/recommendations")
        second = client.post("/v1/stores/s2/recommendations")

    assert first.status_code == 200
    assert second.status_code == 429


def test_pickup_code_attempts_are_limited_per_order_whatever_the_client_address() -> None:
    pickup = RoutePolicy(
        "POST", "/v1/orders/{order_id}/pickup", RateLimit(3, HOUR), by_path_param("order_id")
    )
    order_id, other_order = uuid.uuid4(), uuid.uuid4()
    with make_client(
        Limiter("memory://"),
        route_policies=[pickup],
        identity=ClientIdentity(trust_proxy_hops=1),
    ) as client:
        statuses = [
            client.post(
                f"/v1/orders/{order_id}/pickup",
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(5)
        ]
        other = client.post(
            f"/v1/orders/{other_order}/pickup", headers={"X-Forwarded-For": "198.51.100.9"}
        )

    assert statuses == [200, 200, 200, 429, 429]
    assert other.status_code == 200


def test_respelling_an_order_id_does_not_buy_more_pickup_attempts() -> None:
    pickup = RoutePolicy(
        "POST", "/v1/orders/{order_id}/pickup", RateLimit(3, HOUR), by_path_param("order_id")
    )
    order_id = uuid.uuid4()
    spellings = [str(order_id), str(order_id).upper(), order_id.hex, f"{{{order_id}}}"]
    with make_client(Limiter("memory://"), route_policies=[pickup], default_policy=None) as client:
        statuses = [client.post(f"/v1/orders/{s}/pickup").status_code for s in spellings]

    assert statuses == [200, 200, 200, 429]


def test_exempt_paths_are_never_limited_and_never_touch_storage() -> None:
    limiter = Limiter(DEAD_REDIS, fail_open=False)
    with make_client(limiter) as client:
        health = [client.get("/healthz").status_code for _ in range(10)]
        metrics = client.get("/metrics")
        limited = client.get("/v1/menu")

    assert health == [200] * 10
    assert metrics.status_code == 200
    assert "RateLimit" not in metrics.headers
    assert limited.status_code == 503
    assert limiter.storage_errors == 1


def test_a_disabled_middleware_never_limits() -> None:
    with make_client(Limiter(DEAD_REDIS, fail_open=False), enabled=False) as client:
        statuses = [client.get("/v1/menu").status_code for _ in range(10)]

    assert statuses == [200] * 10


def test_a_dead_redis_fails_open_counts_every_failure_and_logs_once() -> None:
    seen: list[Exception] = []
    limiter = Limiter(DEAD_REDIS, fail_open=True, on_storage_error=seen.append)
    with capture_logs() as logs, make_client(limiter) as client:
        responses = [client.get("/v1/menu") for _ in range(8)]

    assert [r.status_code for r in responses] == [200] * 8
    # Nothing was counted, so no numbers are advertised.
    assert all("RateLimit" not in r.headers for r in responses)
    assert limiter.storage_errors == 8
    assert len(seen) == 8
    failures = [e for e in logs if e["event"] == "rate_limiter_storage_failed"]
    assert len(failures) == 1
    assert failures[0]["fail_open"] is True


def test_a_dead_redis_fails_closed_with_503_and_the_error_envelope() -> None:
    limiter = Limiter(DEAD_REDIS, fail_open=False)
    with make_client(limiter) as client:
        response = client.get("/v1/menu")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "rate_limiter_unavailable"
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert limiter.storage_errors == 1


def test_an_unknown_header_draft_is_refused() -> None:
    with pytest.raises(ValueError, match="draft"):
        RateLimitMiddleware(ok, limiter=Limiter(), default_policy=None, headers="draft-6")  # type: ignore[arg-type]
