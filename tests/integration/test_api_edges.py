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
from service.http.endpoint import Endpoint
from tests.factories import new_id
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
