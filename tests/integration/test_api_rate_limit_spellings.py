"""Issue 14: a route's own budget cannot be escaped by spelling its path differently.

Every spelling below either reaches the endpoint and spends that endpoint's budget, or is not
routed to the endpoint at all (404, 405, a slash redirect). Whether a request reached the
handler is told by what only the handler answers: 422 for an empty order, "no order with this
id" for a pickup of an unknown order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.app import create_app

UNKNOWN_ORDER = "0b5c2a8e-4f1d-4c1a-9a55-3f0e2d7c9b11"
SPELLINGS = [
    "{p}",
    "{p}%0A",
    "{p}%0D",
    "{p}%0D%0A",
    "{p}%0A%0A",
    "{p}%00",
    "{p}%09",
    "{p}%20",
    "{p}/",
    "{p}//",
    "/{p}",
    "{p}%2F",
    "{p}/.",
    "{p}/x/..",
    "{p};x",
    "{upper}",
]
ROUTER_ANSWERS = {301, 302, 307, 308, 400, 404, 405}


def spelled(template: str, path: str) -> str:
    return template.format(p=path, upper=path.upper())


def app_client(make_settings: Callable[..., Any], clock: Any, **values: str) -> TestClient:
    settings = make_settings(RATE_LIMIT_ENABLED="true", RATE_LIMIT_MAX="1000", **values)
    return TestClient(create_app(settings, clock=clock), follow_redirects=False)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_no_spelling_of_post_orders_escapes_the_order_budget(
    spelling: str, make_settings: Callable[..., Any], clock: Any
) -> None:
    path = spelled(spelling, "/v1/orders")
    with app_client(make_settings, clock, RATE_LIMIT_ORDERS_MAX="2") as c:
        statuses = [c.post(path, json={}).status_code for _ in range(5)]
    reached = statuses.count(422)  # only place_order's validation answers 422 to `{}`
    assert reached <= 2, (path, statuses)
    assert set(statuses) <= {422, 429} | ROUTER_ANSWERS, (path, statuses)
    if reached:
        assert statuses[reached:] == [429] * (5 - reached), (path, statuses)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_no_spelling_of_recommendations_escapes_the_ai_budget(
    spelling: str, make_settings: Callable[..., Any], clock: Any
) -> None:
    path = spelled(spelling, f"/v1/stores/{UNKNOWN_ORDER}/recommendations")
    with app_client(make_settings, clock, RATE_LIMIT_AI_MAX="2") as c:
        statuses = [c.post(path, json={}).status_code for _ in range(5)]
    reached = statuses.count(422)
    assert reached <= 2, (path, statuses)
    if reached:
        assert statuses[reached:] == [429] * (5 - reached), (path, statuses)


def test_pickup_spellings_of_one_order_share_one_attempt_budget(
    make_settings: Callable[..., Any], clock: Any, staff: dict[str, str]
) -> None:
    ids = [
        UNKNOWN_ORDER,
        UNKNOWN_ORDER.upper(),
        UNKNOWN_ORDER.replace("-", ""),
        "%7B" + UNKNOWN_ORDER + "%7D",
        "urn:uuid:" + UNKNOWN_ORDER,
    ]
    paths = [spelled(s, f"/v1/orders/{i}/pickup") for i in ids for s in SPELLINGS]
    with app_client(make_settings, clock, PICKUP_CODE_ATTEMPTS_MAX="3") as c:
        answers = [c.post(p, json={"pickup_code": "000000"}, headers=staff) for p in paths]
    reached = [
        a for a in answers if a.status_code == 404 and "no order" in a.json()["error"]["message"]
    ]
    assert len(reached) <= 3
    assert {a.status_code for a in answers} <= {404, 429} | ROUTER_ANSWERS


@pytest.mark.parametrize("suffix", ["%0A", "%0D", "%00", "%09", "%1B", "%7F", "%E2%80%AE"])
def test_a_path_with_an_unprintable_character_is_routed_nowhere(
    suffix: str, make_settings: Callable[..., Any], clock: Any
) -> None:
    with app_client(make_settings, clock) as c:
        answer = c.post(f"/v1/orders{suffix}", json={})
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "code": "not_found",
        "message": "no route matches this path",
        "details": None,
    }
