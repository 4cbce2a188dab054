from __future__ import annotations

import asyncio
import socket
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from service.http import schemas
from tests.e2e.server import Server, base_env, free_port, json_env, pickup
from tests.factories import STAFF_KEY

STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}
ALL_DAY = {
    d: [{"opens": "00:00", "closes": "23:45"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def first_bookable_slot(http: httpx.Client, store_id: str) -> str:
    for days in range(4):
        day = (date.today() + timedelta(days=days)).isoformat()
        slots = http.get(f"/v1/stores/{store_id}/slots", params={"date": day}).json()["items"]
        bookable = [s["start"] for s in slots if s["bookable"]]
        if bookable:
            return str(bookable[0])
    raise AssertionError("no bookable slot in the next days")


def open_shop(http: httpx.Client, capacity: int) -> tuple[str, str]:
    store = http.post(
        "/v1/stores",
        headers=STAFF,
        json={
            "name": "E2E Coffee",
            "address": "1 Loop Road",
            "timezone": "UTC",
            "slot_minutes": 15,
            "slot_capacity": capacity,
            "lead_time_minutes": 0,
            "opening_hours": ALL_DAY,
        },
    ).json()
    item = http.post(
        f"/v1/stores/{store['id']}/menu",
        headers=STAFF,
        json={
            "name": "Mocha",
            "category": "coffee",
            "price_cents": 420,
            "currency": "EUR",
        },
    ).json()
    return store["id"], item["id"]


def order(store_id: str, item_id: str, slot: str) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "pickup_slot_start": slot,
        "customer": {"name": "Grace", "phone": "+15550100"},
        "items": [{"menu_item_id": item_id, "quantity": 1}],
    }


def test_demo_data_is_served_on_first_start_with_no_configuration(tmp_path: Path) -> None:
    # Exactly what `make serve` does: no .env, only the port chosen for the test.
    with Server(base_env(PORT=str(free_port())), cwd=tmp_path) as server:
        http = httpx.Client(base_url=server.url)
        stores = schemas.StoreList.model_validate(http.get("/v1/stores").json())
        assert len(stores.items) == 5
        menu = http.get(f"/v1/stores/{stores.items[0].id}/menu")
        assert len(schemas.MenuList.model_validate(menu.json()).items) == 40
        slot = first_bookable_slot(http, str(stores.items[0].id))
        item = next(i for i in menu.json()["items"] if i["available"])
        placed = http.post("/v1/orders", json=order(str(stores.items[0].id), item["id"], slot))
        assert placed.status_code == 201, placed.text
        assert http.get("/readyz").json()["status"] == "ready"
        assert "server" not in http.get("/healthz").headers
    assert (tmp_path / "data" / "pickup.json").is_file()


def test_production_with_missing_keys_exits_before_binding_and_names_them(tmp_path: Path) -> None:
    port = free_port()
    secret = "sk-this-must-never-be-printed"
    result = pickup(
        "serve",
        env=base_env(
            APP_ENV="production", PORT=str(port), OPENAI_API_KEY=secret, ADMIN_TOKEN="short"
        ),
        cwd=tmp_path,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode != 0
    for key in ("DATA_BACKEND", "STAFF_API_KEYS", "ADMIN_TOKEN"):
        assert key in output
    assert secret not in output and "short" not in output.replace("at least", "")
    with socket.socket() as sock:  # the port was never bound
        sock.bind(("127.0.0.1", port))


def test_config_check_reports_problems_and_hides_secrets(tmp_path: Path) -> None:
    ok = pickup("config", "check", env=json_env(tmp_path), cwd=tmp_path)
    assert ok.returncode == 0 and STAFF_KEY not in ok.stdout.decode()
    assert "AI recommendations: disabled" in ok.stdout.decode()
    bad = pickup("config", "check", env=json_env(tmp_path, WEB_CONCURRENCY="4"), cwd=tmp_path)
    assert bad.returncode == 2 and "WEB_CONCURRENCY" in bad.stderr.decode()


def test_a_corrupt_data_file_stops_start_up_and_is_left_untouched(tmp_path: Path) -> None:
    data = tmp_path / "pickup.json"
    data.write_bytes(b'{"format": "pickup-data", "version": 1, "stores": [')
    result = pickup("serve", env=json_env(tmp_path, PORT=str(free_port())), cwd=tmp_path)
    assert result.returncode != 0
    assert "cannot read the data file" in (result.stdout + result.stderr).decode()
    assert data.read_bytes() == b'{"format": "pickup-data", "version": 1, "stores": ['


def test_concurrent_orders_never_overbook_a_slot(tmp_path: Path) -> None:
    with Server(json_env(tmp_path, SEED_DEMO_DATA="false"), cwd=tmp_path) as server:
        http = httpx.Client(base_url=server.url)
        store_id, item_id = open_shop(http, capacity=5)
        slot = first_bookable_slot(http, store_id)

        async def rush() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                responses = await asyncio.gather(
                    *(
                        client.post("/v1/orders", json=order(store_id, item_id, slot))
                        for _ in range(50)
                    )
                )
                return [r.status_code for r in responses]

        statuses = asyncio.run(rush())
        assert statuses.count(201) == 5 and statuses.count(409) == 45


@pytest.mark.timeout(90)
def test_kill_9_during_writes_keeps_every_acknowledged_order(tmp_path: Path) -> None:
    server = Server(json_env(tmp_path, SEED_DEMO_DATA="false"), cwd=tmp_path).start()
    http = httpx.Client(base_url=server.url)
    store_id, item_id = open_shop(http, capacity=1000)
    slot = first_bookable_slot(http, store_id)
    acknowledged: list[tuple[str, str]] = []

    async def writers() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:

            async def one_writer() -> None:
                while True:
                    try:
                        r = await client.post("/v1/orders", json=order(store_id, item_id, slot))
                    except httpx.HTTPError:
                        return  # the server is gone
                    if r.status_code == 201:
                        acknowledged.append((r.json()["id"], r.json()["order_token"]))

            async def killer() -> None:
                while len(acknowledged) < 40:  # noqa: ASYNC110 - polling a plain list
                    await asyncio.sleep(0.01)
                server.kill()

            await asyncio.gather(killer(), *(one_writer() for _ in range(8)))

    asyncio.run(writers())
    orjson.loads((tmp_path / "pickup.json").read_bytes())  # whole, never torn
    with Server(json_env(tmp_path, SEED_DEMO_DATA="false"), cwd=tmp_path) as restarted:
        http = httpx.Client(base_url=restarted.url)
        for order_id, token in acknowledged:
            assert (
                http.get(f"/v1/orders/{order_id}", headers={"X-Order-Token": token}).status_code
                == 200
            )
    assert len(acknowledged) >= 40


def test_a_body_that_stops_arriving_gets_408_and_the_server_keeps_serving(tmp_path: Path) -> None:
    with Server(json_env(tmp_path, REQUEST_BODY_TIMEOUT_S="1"), cwd=tmp_path) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 500\r\n\r\n{"store_id": '
            )
            received = b""
            while b'"details"' not in received and (chunk := sock.recv(65536)):
                received += chunk  # the status line and the body may come in separate segments
            answer = received.decode()
        assert answer.startswith("HTTP/1.1 408")
        assert '"code":"request_timeout"' in answer
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_serve_listens_dual_stack_by_default(tmp_path: Path) -> None:
    # Railway's private network is IPv6; browsers and health checks may come over IPv4.
    values = json_env(tmp_path, SEED_DEMO_DATA="false")
    assert "HOST" not in values
    with Server(values, cwd=tmp_path) as server:
        port = server.port
        for url in (f"http://127.0.0.1:{port}/healthz", f"http://[::1]:{port}/healthz"):
            assert httpx.get(url, timeout=10).status_code == 200, url
