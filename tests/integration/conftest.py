from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.factories import create_store


def open_shop(client: TestClient, staff: dict[str, str]) -> dict[str, Any]:
    """A new store with one menu item, on `client`: {"store": ..., "item": ...}."""
    store = create_store(client, staff)
    item = client.post(
        f"/v1/stores/{store['id']}/menu",
        json={"name": "Flat White", "category": "coffee", "price_cents": 345, "currency": "GBP"},
        headers=staff,
    ).json()
    return {"store": store, "item": item}


@pytest.fixture
def shop(client: TestClient, staff: dict[str, str]) -> dict[str, Any]:
    return open_shop(client, staff)
