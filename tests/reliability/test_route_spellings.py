"""Issue 14 (High): route-specific limits cannot be escaped by spelling the path differently.

Sent on raw sockets to `pickup serve` so no client library normalises the path first. Each
spelling either reaches the endpoint and spends that endpoint's budget, or is not routed to it.
Before the fix, `POST /v1/orders%0A` was dispatched to the order endpoint (Starlette's route
regex ends in `$`, which matches before a final newline) while the limiter missed it, so only
the huge per-client budget applied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.hostile import exchange, request_bytes
from tests.reliability.procs import STAFF, Service
from tests.reliability.table import Summary, fixed_bug

ORDERS_MAX = 2
PICKUP_MAX = 3
UNKNOWN = "0b5c2a8e-4f1d-4c1a-9a55-3f0e2d7c9b11"
SUFFIXES = ["", "%0A", "%0D", "%0D%0A", "%0a", "%00", "%09", "%20", "/", "%2F", "/.", ";x"]
# Connection: close, so reading each answer does not wait out a keep-alive.
JSON = {"Content-Type": "application/json", "Connection": "close"}


@pytest.mark.timeout(60)
def test_no_spelling_of_a_limited_route_escapes_its_own_budget(
    tmp_path: Path, summary: Summary
) -> None:
    service = Service(
        tmp_path / "service",
        DATA_BACKEND="json",
        WEB_CONCURRENCY=1,
        RATE_LIMIT_ORDERS_MAX=ORDERS_MAX,
        PICKUP_CODE_ATTEMPTS_MAX=PICKUP_MAX,
    )
    with service:
        orders = [
            exchange(service.port, request_bytes("POST", f"/v1/orders{s}", JSON, b"{}"))
            for s in SUFFIXES * 2
        ]
        pickups = [
            exchange(
                service.port,
                request_bytes(
                    "POST",
                    f"/v1/orders/{order_id}/pickup{s}",
                    {**JSON, **STAFF},
                    b'{"pickup_code": "000000"}',
                ),
            )
            for order_id in (UNKNOWN, UNKNOWN.upper(), UNKNOWN.replace("-", ""))
            for s in SUFFIXES
        ]
    fixed_bug(summary, requests=len(orders) + len(pickups))
    # Only place_order's validation answers 422 to `{}`; only the pickup handler says "no order".
    reached_orders = [a for a in orders if a.status == 422]
    reached_pickup = [
        a for a in pickups if a.status == 404 and "no order" in a.json()["error"]["message"]
    ]
    assert len(reached_orders) <= ORDERS_MAX, [a.status for a in orders]
    assert len(reached_pickup) <= PICKUP_MAX, [a.status for a in pickups]
    assert {a.status for a in orders + pickups} <= {307, 400, 404, 405, 422, 429}
