from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from harness.metrics import sample_sum
from tests.e2e.server import Server, json_env
from tests.e2e.test_serve import STAFF, first_bookable_slot, open_shop, order


def scrape(url: str, name: str, **labels: str) -> float:
    return sample_sum(httpx.get(f"{url}/metrics").text, name, **labels)


def test_concurrent_cold_reads_load_the_menu_once(tmp_path: Path) -> None:
    with Server(json_env(tmp_path, SEED_DEMO_DATA="false"), cwd=tmp_path) as server:
        store_id, _ = open_shop(httpx.Client(base_url=server.url), capacity=5)
        before = scrape(server.url, "db_queries_total", query="list_menu")

        async def burst() -> set[bytes]:
            async with httpx.AsyncClient(base_url=server.url) as client:
                responses = await asyncio.gather(
                    *(client.get(f"/v1/stores/{store_id}/menu") for _ in range(50))
                )
            return {r.content for r in responses}

        assert len(asyncio.run(burst())) == 1
        assert scrape(server.url, "db_queries_total", query="list_menu") - before == 1


def test_logs_are_json_with_request_ids_and_never_hold_secrets(tmp_path: Path) -> None:
    server = Server(json_env(tmp_path, SEED_DEMO_DATA="false"), cwd=tmp_path).start()
    try:
        http = httpx.Client(base_url=server.url)
        store_id, item_id = open_shop(http, capacity=5)
        placed = http.post(
            "/v1/orders",
            json=order(store_id, item_id, first_bookable_slot(http, store_id)),
            headers={"X-Request-ID": "trace-me-42"},
        ).json()
        http.get(f"/v1/orders/{placed['id']}", headers={"X-Order-Token": placed["order_token"]})
        http.get(f"/v1/stores/{store_id}/orders", headers=STAFF)
    finally:
        server.stop()
    output = server.output()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert any(
        line["request_id"] == "trace-me-42" and line["route"] == "/v1/orders" for line in access
    )
    assert {"method", "route", "status", "duration_ms"} <= set(access[0])
    for secret in (STAFF["Authorization"].split()[1], placed["order_token"], "+15550100"):
        assert secret not in output


def test_each_request_is_logged_once(tmp_path: Path) -> None:
    server = Server(json_env(tmp_path, SEED_DEMO_DATA="false"), cwd=tmp_path).start()
    try:
        httpx.get(f"{server.url}/v1/stores", headers={"X-Request-ID": "count-me-once"})
    finally:
        server.stop()
    assert server.output().count("count-me-once") == 1
