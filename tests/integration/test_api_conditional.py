"""Conditional requests: a client that has the body gets a 304, not the body again. On cached
public reads, when a customer revalidates its own order and when a day's slots are revalidated,
the service does no backend work to say so (for the order and the slots only the ETag is kept:
under a digest of the token that read the order; for the slots until an order or store write,
or the clock, changes them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import Clock
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


def test_a_day_s_slots_revalidate_without_backend_work_until_an_order_or_store_write(
    cached_client: TestClient, staff: dict[str, str], clock: Clock
) -> None:
    # Between two lead-time edges (at 08:00 sharp the 08:15 slot is about to close, so a kept
    # ETag would be due at once).
    clock.now += timedelta(minutes=5)
    shop = open_shop(cached_client, staff)
    url = f"/v1/stores/{shop['store']['id']}/slots"
    day = {"date": "2026-12-01"}
    gzip = {"Accept-Encoding": "gzip"}

    def revalidate(etag: str) -> Any:
        return cached_client.get(url, params=day, headers={**gzip, "If-None-Match": etag})

    etag = cached_client.get(url, params=day, headers=gzip).headers["etag"]
    assert revalidate(etag).status_code == 304  # computes once more, and keeps the ETag
    reads = metric(cached_client, "db_queries_total", query="held_by_slot")
    for _ in range(3):
        polled = revalidate(etag)
        assert polled.status_code == 304 and polled.content == b""
        assert polled.headers["etag"] == etag
        assert polled.headers["cache-control"] == "public, no-cache"
        assert polled.headers["vary"] == "Accept-Encoding"
    assert metric(cached_client, "db_queries_total", query="held_by_slot") == reads

    # An order takes capacity: the kept ETag is retired and the new list comes in full.
    order = place(cached_client, shop).json()
    booked = revalidate(etag)
    assert booked.status_code == 200 and booked.headers["etag"] != etag
    assert revalidate(booked.headers["etag"]).status_code == 304
    # Cancelling gives the capacity back: the list is the one from before the order again.
    cancel = f"/v1/orders/{order['id']}/cancel"
    cached_client.post(cancel, headers={"X-Order-Token": order["order_token"]}).raise_for_status()
    freed = revalidate(booked.headers["etag"])
    assert freed.status_code == 200 and freed.headers["etag"] == etag
    # A store edit (capacity) changes every slot.
    assert revalidate(etag).status_code == 304
    store = f"/v1/stores/{shop['store']['id']}"
    cached_client.patch(store, json={"slot_capacity": 9}, headers=staff).raise_for_status()
    edited = revalidate(etag)
    assert edited.status_code == 200
    assert {s["capacity"] for s in edited.json()["items"]} == {9}


def test_a_kept_slots_etag_is_not_trusted_past_a_change_by_the_clock(
    cached_client: TestClient, staff: dict[str, str], clock: Clock
) -> None:
    # 06:50 UTC (London in winter): the 07:15 slot stops being bookable just after 07:00
    # (15 minutes' lead time); a kept ETag is trusted for 30 s at most.
    clock.now = datetime(2026, 12, 1, 6, 50, tzinfo=UTC)
    shop = open_shop(cached_client, staff)
    url = f"/v1/stores/{shop['store']['id']}/slots"
    day = {"date": "2026-12-01"}

    def reads() -> float:
        return metric(cached_client, "db_queries_total", query="held_by_slot")

    etag = cached_client.get(url, params=day).headers["etag"]
    assert cached_client.get(url, params=day, headers={"If-None-Match": etag}).status_code == 304
    before = reads()
    clock.now += timedelta(seconds=20)
    assert cached_client.get(url, params=day, headers={"If-None-Match": etag}).status_code == 304
    assert reads() == before  # answered from the kept ETag
    clock.now += timedelta(seconds=10)
    assert cached_client.get(url, params=day, headers={"If-None-Match": etag}).status_code == 304
    assert reads() == before + 1  # 30 s on: computed again (and unchanged)

    clock.now = datetime(2026, 12, 1, 7, 0, 1, tzinfo=UTC)
    later = cached_client.get(url, params=day, headers={"If-None-Match": etag})
    assert later.status_code == 200
    bookable = {s["start"][11:16]: s["bookable"] for s in later.json()["items"]}
    assert bookable["07:15"] is False and bookable["07:30"] is True
