"""What every scenario shares: response checks, store discovery, skewed picks, order bodies."""

from __future__ import annotations

import json
import random
import urllib.request
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from locust import FastHttpUser, between
from locust.contrib.fasthttp import ResponseContextManager
from locust.exception import StopUser


def expect(resp: ResponseContextManager, *statuses: int) -> Any:
    """The JSON body when the status is one of `statuses`; otherwise None and a failed request."""
    if resp.status_code not in statuses:
        detail = getattr(resp, "error", None) or (resp.text or "")[:200]
        resp.failure(f"HTTP {resp.status_code}, expected {statuses}: {detail}")
        return None
    try:
        body = resp.json()
    except ValueError:
        resp.failure(f"HTTP {resp.status_code} with a body that is not JSON")
        return None
    resp.success()
    return body


def call(url: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST `body` to) a URL outside Locust's stats: set-up and fault control are not
    the load being measured."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        return json.load(resp)


def error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


class Skewed:
    """Zipf-like popularity over a list: the first item is the hottest key, the tail is cold."""

    def __init__(self, items: list[Any], exponent: float = 1.2) -> None:
        self.items = items
        self.cum_weights = list(accumulate(1 / rank**exponent for rank in range(1, len(items) + 1)))

    def pick(self) -> Any:
        return random.choices(self.items, cum_weights=self.cum_weights)[0]


def local_date(store: dict[str, Any], days_ahead: int = 0) -> date:
    # Slots are asked for by the store's own calendar day, not the load generator's.
    return datetime.now(ZoneInfo(store["timezone"])).date() + timedelta(days=days_ahead)


def customer() -> dict[str, str]:
    n = random.randint(100_000, 999_999)
    return {"name": f"Load Test {n}", "phone": f"+44 7700 {n}"}


def order_body(store_id: str, slot_start: str, lines: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "pickup_slot_start": slot_start,
        "customer": customer(),
        "items": [{"menu_item_id": item, "quantity": qty} for item, qty in lines],
    }


class PickupUser(FastHttpUser):
    """Base of every scenario: a FastHttpUser (about 4x HttpUser per core) with a think time."""

    abstract = True
    wait_time = between(0.2, 1.0)
    headers: dict[str, str] = {}  # sent with every request the helpers below make

    def checked_get(self, url: str, name: str) -> ResponseContextManager:
        """A GET with this user's headers, grouped under `name`; the caller judges the answer."""
        return self.client.get(url, name=name, headers=self.headers, catch_response=True)

    def stores_to_visit(self) -> Skewed:
        """Every store, picked with a skew; a user with no store to visit stops."""
        stores = self.discover_stores()
        if not stores:
            raise StopUser
        return Skewed(stores)

    def discover_stores(self) -> list[dict[str, Any]]:
        stores: list[dict[str, Any]] = []
        url = "/v1/stores?limit=100"
        while url:
            with self.checked_get(url, "/v1/stores") as resp:
                page = expect(resp, 200)
                if page is not None and not isinstance(page.get("items"), list):
                    resp.failure("no items list")
                    page = None
            if page is None:
                break
            stores += page["items"]
            cursor = page.get("next_cursor")
            url = f"/v1/stores?limit=100&cursor={quote(cursor)}" if cursor else ""
        return stores

    def menu(self, store_id: str) -> list[dict[str, Any]]:
        with self.checked_get(f"/v1/stores/{store_id}/menu", "/v1/stores/[id]/menu") as resp:
            menu = expect(resp, 200)
            if menu is None:
                return []
            items = menu.get("items")
            if not items or any(item.get("store_id") != store_id for item in items):
                resp.failure("empty menu, or items of another store")
                return []
            return list(items)

    def bookable_slots(self, store: dict[str, Any], days_ahead: int = 0) -> list[dict[str, Any]]:
        day = local_date(store, days_ahead).isoformat()
        url = f"/v1/stores/{store['id']}/slots?date={day}"
        with self.checked_get(url, "/v1/stores/[id]/slots") as resp:
            slots = expect(resp, 200)
            if slots is None:
                return []
            if not isinstance(slots.get("items"), list):
                resp.failure("no items list")
                return []
            if any(s["remaining"] > s["capacity"] or s["remaining"] < 0 for s in slots["items"]):
                resp.failure("a slot's remaining count is outside 0..capacity")
            return [s for s in slots["items"] if s["bookable"]]
