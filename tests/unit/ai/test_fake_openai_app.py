from __future__ import annotations

import argparse
import json
import random
from typing import Any

from starlette.testclient import TestClient

from service.ai.fake_openai import (
    FakeBehaviour,
    add_cli_arguments,
    create_fake_openai_app,
)

MENU = [
    {"id": "soup", "name": "Soup", "price_cents": 450, "category": "mains", "tags": ["veg"]},
    {"id": "tea", "name": "Tea", "price_cents": 200, "category": "drinks", "tags": []},
    {"id": "cake", "name": "Cake", "price_cents": 300, "category": "dessert", "tags": []},
    {"id": "stew", "name": "Stew", "price_cents": 900, "category": "mains", "tags": []},
]


def chat(client: TestClient, budget_cents: int | None = None) -> Any:
    document = {"preferences": "", "budget_cents": budget_cents, "party_size": 2, "menu": MENU}
    return client.post(
        "/v1/chat/completions",
        json={
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": json.dumps(document)},
            ],
        },
    )


def content_of(response: Any) -> Any:
    return json.loads(response.json()["choices"][0]["message"]["content"])


def test_a_healthy_answer_is_a_chat_completion_with_picks_within_budget() -> None:
    client = TestClient(create_fake_openai_app())
    response = chat(client, budget_cents=700)
    body = response.json()
    assert response.status_code == 200
    assert (body["object"], body["model"]) == ("chat.completion", "gpt-test")
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert [item["menu_item_id"] for item in content_of(response)["items"]] == ["tea", "cake"]


def test_without_a_budget_the_three_cheapest_items_are_picked() -> None:
    response = chat(TestClient(create_fake_openai_app()))
    assert [item["menu_item_id"] for item in content_of(response)["items"]] == [
        "tea",
        "cake",
        "soup",
    ]


def test_when_nothing_fits_the_budget_the_cheapest_item_is_still_offered() -> None:
    response = chat(TestClient(create_fake_openai_app()), budget_cents=50)
    assert [item["menu_item_id"] for item in content_of(response)["items"]] == ["tea"]


def test_the_models_endpoint_lists_a_model() -> None:
    body = TestClient(create_fake_openai_app()).get("/v1/models").json()
    assert body["object"] == "list"
    assert body["data"][0]["object"] == "model"


def test_control_changes_the_behaviour_of_the_next_request() -> None:
    client = TestClient(create_fake_openai_app())
    changed = client.post("/_control", json={"mode": "error", "status_code": 429})
    assert changed.json()["behaviour"]["mode"] == "error"

    response = chat(client)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert client.get("/_control").json()["by_outcome"] == {"error": 1}


def test_an_invalid_control_request_changes_nothing() -> None:
    client = TestClient(create_fake_openai_app())
    response = client.post("/_control", json={"mode": "error", "error_rate": 2})
    assert response.status_code == 400
    assert client.get("/_control").json()["behaviour"] == FakeBehaviour().model_dump()


def test_reset_restores_the_starting_behaviour_and_zeroes_the_counters() -> None:
    client = TestClient(create_fake_openai_app(FakeBehaviour(latency_ms=1)))
    client.post("/_control", json={"mode": "malformed"})
    chat(client)
    state = client.post("/_control/reset").json()
    assert state["behaviour"] == FakeBehaviour(latency_ms=1).model_dump()
    assert (state["requests_total"], state["by_outcome"]) == (0, {})


def test_the_error_rate_fails_about_that_share_of_requests() -> None:
    app = create_fake_openai_app(
        FakeBehaviour(error_rate=0.5, status_code=503), rng=random.Random(7)
    )
    client = TestClient(app)
    statuses = [chat(client).status_code for _ in range(40)]
    assert set(statuses) == {200, 503}
    assert 10 <= statuses.count(503) <= 30
    assert client.get("/_control").json()["requests_total"] == 40


def test_faulty_modes_answer_200_with_unusable_content() -> None:
    client = TestClient(create_fake_openai_app())
    client.post("/_control", json={"mode": "malformed"})
    malformed = chat(client).json()["choices"][0]["message"]["content"]
    assert not malformed.lstrip().startswith("{")

    client.post("/_control", json={"mode": "schema_break"})
    assert "items" not in content_of(chat(client))

    client.post("/_control", json={"mode": "length"})
    truncated = chat(client).json()["choices"][0]
    assert truncated["finish_reason"] == "length"

    client.post("/_control", json={"mode": "bad_body"})
    assert chat(client).text.startswith("<html>")


def test_the_cli_arguments_describe_the_behaviour() -> None:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(["--port", "9100", "--mode", "hang", "--error-rate", "0.1"])
    assert (args.host, args.port, args.mode, args.error_rate) == ("127.0.0.1", 9100, "hang", 0.1)
    assert (args.latency_ms, args.status_code) == (0, 500)
