"""Test data with random ids, so tests never collide with each other or with seeded data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from starlette.testclient import TestClient

from service.domain import models as m

# Tuesday 1 December 2026, 08:00 UTC (= 08:00 in London, which is on GMT then).
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
STAFF_KEY = "staff-key-for-every-store-0001"
ADMIN_TOKEN = "admin-token-for-tests-000000001"


def new_id() -> str:
    return str(uuid.uuid4())


def make_store(**overrides: Any) -> m.Store:
    fields: dict[str, Any] = {
        "id": new_id(),
        "name": "Test Coffee",
        "address": "1 Test Street, London",
        "timezone": "Europe/London",
        "slot_minutes": 15,
        "slot_capacity": 3,
        "lead_time_minutes": 15,
        "accepting_orders": True,
        "opening_hours": tuple(m.OpeningInterval(d, time(7), time(20)) for d in range(7)),
    }
    fields.update(overrides)
    return m.Store(**fields)


def make_item(store_id: str, **overrides: Any) -> m.MenuItem:
    fields: dict[str, Any] = {
        "id": new_id(),
        "store_id": store_id,
        "name": "Flat White",
        "description": "Double shot",
        "category": "coffee",
        "price_cents": 350,
        "currency": "GBP",
        "available": True,
        "tags": ("hot",),
    }
    fields.update(overrides)
    return m.MenuItem(**fields)


def make_order(store: m.Store, item: m.MenuItem, **overrides: Any) -> m.Order:
    fields: dict[str, Any] = {
        "id": new_id(),
        "store_id": store.id,
        "customer_name": "Ada",
        "customer_phone": "+447700900123",
        "lines": (m.OrderLine(item.id, item.name, item.price_cents, 2),),
        "total_cents": item.price_cents * 2,
        "currency": item.currency,
        "pickup_slot_start": NOW + timedelta(hours=1),
        "status": m.OrderStatus.PLACED,
        "pickup_code": "123456",
        "order_token": uuid.uuid4().hex,
        "note": None,
        "created_at": NOW,
        "updated_at": NOW,
        "history": (m.StatusChange(m.OrderStatus.PLACED, NOW, "customer"),),
    }
    fields.update(overrides)
    return m.Order(**fields)


def order_body(store_id: str, item_id: str, slot: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store_id": store_id,
        "pickup_slot_start": slot.isoformat(),
        "customer": {"name": "Ada Lovelace", "phone": "+44 7700 900123"},
        "items": [{"menu_item_id": item_id, "quantity": 2}],
    }
    body.update(overrides)
    return body


STORE_BODY: dict[str, Any] = {
    "name": "Corner Coffee",
    "address": "2 Side Street, London",
    "timezone": "Europe/London",
    "slot_minutes": 15,
    "slot_capacity": 2,
    "lead_time_minutes": 15,
    "opening_hours": {
        day: [{"opens": "07:00", "closes": "20:00"}]
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    },
}


def create_store(client: TestClient, staff: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = client.post("/v1/stores", json={**STORE_BODY, **changes}, headers=staff)
    assert response.status_code == 201, response.text
    return dict(response.json())
