"""Recommendations through the real app, against `pickup fake-openai` as a real HTTP upstream."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from harness.procs import PICKUP, FakeOpenAI, base_env
from service.app import create_app
from service.http import schemas
from tests.factories import ADMIN_TOKEN, create_store

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MENU = [
    ("Green Tea", "tea", 250, ["vegan", "hot"]),
    ("Flat White", "coffee", 340, ["hot", "popular"]),
    ("Iced Latte", "coffee", 390, ["cold"]),
    ("Vegan Wrap", "sandwiches", 650, ["vegan"]),
    ("Cheesecake", "bakery", 480, []),
]


class FakeUpstream:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def set(self, **behaviour: Any) -> None:
        httpx.post(f"{self.url}/_control", json=behaviour).raise_for_status()

    def requests(self) -> int:
        return int(httpx.get(f"{self.url}/_control").json()["requests_total"])


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    with FakeOpenAI(tmp_path_factory.mktemp("fake-openai")) as process:
        yield FakeUpstream(process.port)


@pytest.fixture
def fake(upstream: FakeUpstream) -> FakeUpstream:
    httpx.post(f"{upstream.url}/_control/reset").raise_for_status()
    return upstream


def shop(c: TestClient, staff: dict[str, str]) -> str:
    store_id = create_store(c, staff)["id"]
    for name, category, price, tags in MENU:
        c.post(
            f"/v1/stores/{store_id}/menu",
            headers=staff,
            json={
                "name": name,
                "category": category,
                "price_cents": price,
                "currency": "GBP",
                "tags": tags,
            },
        ).raise_for_status()
    return str(store_id)


@pytest.fixture
def ai_client(
    make_settings: Callable[..., Any], clock: Any, fake: FakeUpstream
) -> Iterator[TestClient]:
    settings = make_settings(
        OPENAI_API_KEY="sk-test-fake-upstream-0001",
        OPENAI_BASE_URL=f"{fake.url}/v1",
        OPENAI_TIMEOUT_MS="500",
        BREAKER_FAIL_MAX="2",
        BREAKER_RESET_TIMEOUT_S="0.5",
    )
    with TestClient(create_app(settings, clock=clock)) as c:
        yield c


def ask(c: TestClient, store_id: str, **body: Any) -> Any:
    return c.post(f"/v1/stores/{store_id}/recommendations", json={"preferences": "", **body})


def test_without_a_key_the_fallback_answers_deterministically(
    client: TestClient, staff: dict[str, str]
) -> None:
    store_id = shop(client, staff)
    first = ask(client, store_id, preferences="something vegan please", party_size=2)
    again = ask(client, store_id, preferences="something vegan please", party_size=2)
    assert first.status_code == 200 and first.json() == again.json()
    answer = schemas.RecommendationOut.model_validate(first.json())
    assert answer.source == "fallback"
    assert [i.name for i in answer.items[:2]] == ["Green Tea", "Vegan Wrap"]
    assert client.get("/readyz").json()["checks"]["ai"]["status"] == "ok"


def test_the_fallback_respects_the_budget(client: TestClient, staff: dict[str, str]) -> None:
    store_id = shop(client, staff)
    answer = ask(client, store_id, budget_cents=300).json()
    assert {i["name"] for i in answer["items"]} == {"Green Tea"}
    none_fit = ask(client, store_id, budget_cents=100)
    assert none_fit.status_code == 409


def test_a_healthy_upstream_answers_with_items_from_the_menu(
    ai_client: TestClient, staff: dict[str, str], fake: FakeUpstream
) -> None:
    store_id = shop(ai_client, staff)
    response = ask(ai_client, store_id, preferences="hot drinks", budget_cents=1000)
    answer = schemas.RecommendationOut.model_validate(response.json())
    assert answer.source == "openai" and 1 <= len(answer.items) <= 5
    menu = {i["id"]: i for i in ai_client.get(f"/v1/stores/{store_id}/menu").json()["items"]}
    for item in answer.items:
        assert menu[str(item.menu_item_id)]["price_cents"] == item.price_cents
    assert fake.requests() == 1


def test_invented_ids_are_dropped_and_the_fallback_answers(
    ai_client: TestClient, staff: dict[str, str], fake: FakeUpstream
) -> None:
    store_id = shop(ai_client, staff)
    fake.set(mode="invented_ids")
    assert ask(ai_client, store_id).json()["source"] == "fallback"


@pytest.mark.parametrize("mode", ["error", "malformed", "schema_break", "length", "hang"])
def test_every_upstream_fault_is_answered_by_the_fallback(
    ai_client: TestClient, staff: dict[str, str], fake: FakeUpstream, mode: str
) -> None:
    store_id = shop(ai_client, staff)
    fake.set(mode=mode, status_code=503)
    started = time.monotonic()
    response = ask(ai_client, store_id, preferences="tea")
    assert response.status_code == 200 and response.json()["source"] == "fallback"
    assert time.monotonic() - started < 2.0  # bounded by OPENAI_TIMEOUT_MS, not the client's 600 s


def test_the_breaker_opens_serves_the_fallback_and_heals_with_one_trial(
    ai_client: TestClient, staff: dict[str, str], fake: FakeUpstream
) -> None:
    store_id = shop(ai_client, staff)
    fake.set(mode="error", status_code=500)
    for _ in range(2):
        assert ask(ai_client, store_id).json()["source"] == "fallback"
    breaker = ai_client.get("/v1/admin/breakers", headers=ADMIN).json()["items"][0]
    assert breaker["state"] == "open" and breaker["last_error_class"] == "InternalServerError"
    schemas.BreakerList.model_validate({"items": [breaker], "next_cursor": None})
    ready = ai_client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    calls = fake.requests()
    for _ in range(5):
        assert ask(ai_client, store_id).json()["source"] == "fallback"
    assert fake.requests() == calls  # open: the upstream is not called
    fake.set(mode="ok")
    time.sleep(0.6)
    assert ask(ai_client, store_id).json()["source"] == "openai"  # the trial call
    assert fake.requests() == calls + 1
    assert (
        ai_client.get("/v1/admin/breakers", headers=ADMIN).json()["items"][0]["state"] == "closed"
    )
    assert ai_client.get("/readyz").json()["status"] == "ready"


def test_breaker_status_needs_the_admin_token(client: TestClient, staff: dict[str, str]) -> None:
    assert client.get("/v1/admin/breakers").status_code == 401
    assert client.get("/v1/admin/breakers", headers=staff).status_code == 403
    assert client.get("/v1/admin/breakers", headers=ADMIN).json()["items"][0]["state"] == "closed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preferences": "x" * 501}, "preferences"),
        ({"preferences": "tea", "party_size": 0}, "party_size"),
        ({"preferences": "tea", "party_size": 21}, "party_size"),
        ({"preferences": "tea", "budget_cents": -5}, "budget_cents"),
        ({}, "preferences"),
    ],
)
def test_bad_recommendation_requests_are_422(
    client: TestClient, staff: dict[str, str], body: dict[str, Any], field: str
) -> None:
    store_id = shop(client, staff)
    response = client.post(f"/v1/stores/{store_id}/recommendations", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == field


def test_the_fake_upstream_cli_starts_without_service_configuration(tmp_path: Path) -> None:
    result = subprocess.run(
        [PICKUP, "fake-openai", "--help"],
        capture_output=True,
        timeout=30,
        cwd=tmp_path,
        env=base_env(APP_ENV="production"),
    )
    assert result.returncode == 0 and "--mode" in result.stdout.decode()
