"""Conditional requests: a client that has the body gets a 304, not the body again. On cached
public reads, and when a customer revalidates its own order, the service does no backend work
to say so (for the order, only the ETag is kept, under a digest of the token that read it);
slots are still computed, but the body is not sent again."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.integration.conftest import open_shop
from tests.integration.test_api_cache_metrics import cached_client as cached_client  # the fixture
from tests.integration.test_api_cache_metrics import metric, store_with_items
from tests.integration.test_api_orders import place


@pytest.fixture
def menu_url(cached_client: TestClient, staff: dict[str, str]) -> str:
    store_id = store_with_items(cached_client, staff, 30)
    return f"/v1/stores/{store_id}/menu"


def test_public_reads_carry_a_strong_etag_and_cache_control(
    cached_client: TestClient, staff: dict[str, str], menu_url: str
) -> None:
    for url in (menu_url, menu_url.removesuffix("/menu"), "/v1/stores"):
        response = cached_client.get(url)
        assert response.status_code == 200
        etag = response.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')  # strong: no W/
        assert "public" in response.headers["cache-control"]
        assert cached_client.get(url).headers["etag"] == etag


def test_if_none_match_gets_a_bodiless_304_without_backend_work(
    cached_client: TestClient, menu_url: str
) -> None:
    first = cached_client.get(menu_url, headers={"Accept-Encoding": "gzip"})
    etag = first.headers["etag"]
    queries = metric(cached_client, "db_queries_total", query="list_menu")

    again = cached_client.get(
        menu_url, headers={"Accept-Encoding": "gzip", "If-None-Match": f'"other", {etag}'}
    )

    assert again.status_code == 304
    assert again.content == b""
    assert "content-length" not in again.headers or again.headers["content-length"] == "0"
    assert "content-encoding" not in again.headers
    assert again.headers["etag"] == etag
    assert again.headers["vary"] == "Accept-Encoding"
    assert metric(cached_client, "db_queries_total", query="list_menu") == queries


@pytest.mark.parametrize("given", ["*", "W/{etag}"])
def test_if_none_match_uses_the_weak_comparison_and_star(
    cached_client: TestClient, menu_url: str, given: str
) -> None:
    etag = cached_client.get(menu_url).headers["etag"]
    response = cached_client.get(menu_url, headers={"If-None-Match": given.format(etag=etag)})
    assert response.status_code == 304


def test_gzip_and_identity_bodies_have_different_etags(
    cached_client: TestClient, menu_url: str
) -> None:
    packed = cached_client.get(menu_url, headers={"Accept-Encoding": "gzip"})
    plain = cached_client.get(menu_url, headers={"Accept-Encoding": "identity"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["etag"] != plain.headers["etag"]
    stale = cached_client.get(
        menu_url, headers={"Accept-Encoding": "identity", "If-None-Match": packed.headers["etag"]}
    )
    assert stale.status_code == 200
    assert stale.json() == plain.json()


def test_a_write_changes_the_etag_so_the_old_one_gets_the_new_body(
    cached_client: TestClient, staff: dict[str, str], menu_url: str
) -> None:
    before = cached_client.get(menu_url)
    item: dict[str, Any] = before.json()["items"][0]
    cached_client.patch(
        f"{menu_url}/{item['id']}", json={"price_cents": 4242}, headers=staff
    ).raise_for_status()

    after = cached_client.get(menu_url, headers={"If-None-Match": before.headers["etag"]})

    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["items"][0]["price_cents"] == 4242


def test_an_order_polled_with_its_etag_is_304_until_its_status_changes(
    client: TestClient, shop: dict[str, Any], staff: dict[str, str]
) -> None:
    created = place(client, shop).json()
    url = f"/v1/orders/{created['id']}"
    mine = {"X-Order-Token": created["order_token"]}
    first = client.get(url, headers=mine)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    assert not etag.startswith("W/")

    unchanged = client.get(url, headers={**mine, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    # The validator never stands in for the token.
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 401

    client.post(f"{url}/status", json={"status": "accepted"}, headers=staff).raise_for_status()
    changed = client.get(url, headers={**mine, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["status"] == "accepted"
    assert changed.headers["etag"] != etag


def test_slots_carry_an_etag_that_changes_when_an_order_takes_capacity(
    client: TestClient, shop: dict[str, Any]
) -> None:
    url = f"/v1/stores/{shop['store']['id']}/slots"
    params = {"date": "2026-12-01"}
    first = client.get(url, params=params, headers={"Accept-Encoding": "gzip"})
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, no-cache"
    again = client.get(
        url, params=params, headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""

    assert place(client, shop).status_code == 201
    after = client.get(
        url, params=params, headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
    )
    assert after.status_code == 200
    assert after.headers["etag"] != etag


def test_a_customer_revalidating_its_order_costs_no_backend_work_and_writes_retire_the_etag(
    cached_client: TestClient, staff: dict[str, str]
) -> None:
    created = place(cached_client, open_shop(cached_client, staff)).json()
    url = f"/v1/orders/{created['id']}"
    mine = {"X-Order-Token": created["order_token"]}
    etag = cached_client.get(url, headers=mine).headers["etag"]
    # The first revalidation reads the order and keeps its ETag for this token.
    assert cached_client.get(url, headers={**mine, "If-None-Match": etag}).status_code == 304
    reads = metric(cached_client, "db_queries_total", query="get_order")

    for _ in range(3):
        polled = cached_client.get(url, headers={**mine, "If-None-Match": etag})
        assert polled.status_code == 304 and polled.content == b""
        assert polled.headers["etag"] == etag
        assert polled.headers["cache-control"] == "private, no-cache"
    assert metric(cached_client, "db_queries_total", query="get_order") == reads

    # The kept ETag answers only the token that read it: another token is checked as before,
    # and staff get their own view (no pickup code) in full.
    guess = cached_client.get(url, headers={"X-Order-Token": "guess", "If-None-Match": etag})
    assert guess.status_code == 403
    by_staff = cached_client.get(url, headers={**staff, "If-None-Match": etag})
    assert by_staff.status_code == 200 and "pickup_code" not in by_staff.json()

    # Each write to the order retires the ETag kept for it: the next poll gets the new order.
    cached_client.post(f"{url}/status", json={"status": "accepted"}, headers=staff)
    accepted = cached_client.get(url, headers={**mine, "If-None-Match": etag})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    cached_client.post(f"{url}/cancel", headers=mine).raise_for_status()
    cancelled = cached_client.get(url, headers={**mine, "If-None-Match": accepted.headers["etag"]})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
