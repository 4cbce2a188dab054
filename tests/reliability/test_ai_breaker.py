"""The AI upstream turns slow, then fails, then heals, while customers keep browsing and ordering.

Each worker has its own breaker, so the walk-through talks to one worker over one kept-alive
connection (and reads that worker's breaker through the same connection); the background load
reaches both workers on connections of its own.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.load import BackgroundLoad, Shop, open_shop
from tests.reliability.procs import ADMIN, Deploy, FakeOpenAI
from tests.reliability.table import Summary

TIMEOUT_S = 0.4
FAIL_MAX = 3
RESET_S = 2.0


def breaker(http: httpx.Client) -> dict[str, Any]:
    items = http.get("/v1/admin/breakers", headers=ADMIN).raise_for_status().json()["items"]
    return dict(next(b for b in items if b["name"] == "openai"))


def recommend(http: httpx.Client, shop: Shop) -> tuple[str, float]:
    started = time.perf_counter()
    answer = http.post(
        f"/v1/stores/{shop.store_id}/recommendations",
        json={"preferences": "something hot with milk", "budget_cents": 2000, "party_size": 2},
    )
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["items"] and all(i["menu_item_id"] == shop.item_id for i in body["items"])
    return str(body["source"]), elapsed


@pytest.mark.timeout(90)
def test_the_breaker_opens_on_a_slow_then_failing_upstream_falls_back_fast_and_closes_on_one_trial(
    tmp_path: Path, deploy: Deploy, summary: Summary
) -> None:
    row = summary(
        "AI upstream slow, failing, healthy",
        done=f"fake OpenAI: 3 s latency (deadline {TIMEOUT_S} s), then 500s, then ok; breaker "
        f"fail_max {FAIL_MAX}, reset {RESET_S:g} s; browsing and ordering meanwhile",
    )
    with FakeOpenAI(tmp_path) as upstream:
        service = deploy(
            OPENAI_BASE_URL=f"{upstream.url}/v1",
            OPENAI_TIMEOUT_MS=int(TIMEOUT_S * 1000),
            BREAKER_FAIL_MAX=FAIL_MAX,
            BREAKER_RESET_TIMEOUT_S=RESET_S,
        ).service
        shop = open_shop(service.url)
        one_worker = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with (
            httpx.Client(base_url=service.url, limits=one_worker, timeout=10) as http,
            BackgroundLoad(service.url, shop, max_seconds=60) as load,
        ):
            # Healthy: the model answers.
            assert recommend(http, shop)[0] == "openai"
            assert breaker(http)["state"] == "closed"

            # Slow: every call waits out the deadline, then falls back; FAIL_MAX open it.
            upstream.set(latency_ms=3000)
            calls_before = upstream.requests_total()
            slow = [recommend(http, shop) for _ in range(FAIL_MAX)]
            assert {source for source, _ in slow} == {"fallback"}
            opened = breaker(http)
            assert opened["state"] == "open", opened
            assert opened["last_error_class"] in ("TimeoutError", "APITimeoutError")
            assert upstream.requests_total() - calls_before == FAIL_MAX
            assert http.get("/readyz").json()["checks"]["ai"]["status"] == "degraded"

            # Failing, breaker open: the upstream is not called, the fallback answers fast.
            upstream.set(latency_ms=0, mode="error", status_code=500)
            calls_before = upstream.requests_total()
            while_open = [recommend(http, shop) for _ in range(20)]
            open_latencies = [elapsed for _, elapsed in while_open]
            assert {source for source, _ in while_open} == {"fallback"}
            assert upstream.requests_total() == calls_before, "called while open"
            assert breaker(http)["state"] == "open"
            assert max(open_latencies) < TIMEOUT_S, open_latencies

            # After the reset timeout one trial goes upstream; it fails, the breaker re-opens.
            time.sleep(RESET_S + 0.2)
            assert recommend(http, shop)[0] == "fallback"
            assert upstream.requests_total() == calls_before + 1
            reopened = breaker(http)
            assert reopened["state"] == "open" and reopened["last_error_class"] == (
                "InternalServerError"
            )

            # Healthy again: the next trial succeeds and closes it; the model answers again.
            upstream.set(mode="ok")
            time.sleep(RESET_S + 0.2)
            calls_before = upstream.requests_total()
            assert recommend(http, shop)[0] == "openai"
            assert breaker(http)["state"] == "closed"
            assert upstream.requests_total() == calls_before + 1
            after = [recommend(http, shop)[0] for _ in range(5)]
            assert after == ["openai"] * 5
            assert http.get("/readyz").json()["checks"]["ai"]["status"] == "ok"
    walk = 1 + FAIL_MAX + 20 + 1 + 1 + 5
    failures = load.failures(load.outcomes)
    row.add(requests=len(load.outcomes) + walk, failures=len(failures))
    slow_mean = statistics.mean(e for _, e in slow)
    row.held = (
        f"opened after {FAIL_MAX} slow calls (each {slow_mean:.2f} s); while open 0 upstream "
        f"calls, fallback p50 {statistics.median(open_latencies) * 1000:.0f} ms / max "
        f"{max(open_latencies) * 1000:.0f} ms; failed trial re-opened, healthy trial closed; "
        f"background load {len(load.outcomes)} requests, {len(failures)} failed"
    )
    assert failures == [], load.by_status(failures)
