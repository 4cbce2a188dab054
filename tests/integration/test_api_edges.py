"""Edges a client or an attacker reaches through the assembled app: what a 500 carries, slash
redirects, who learns whether an order exists, and input that must never become a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from service.app import create_app
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
