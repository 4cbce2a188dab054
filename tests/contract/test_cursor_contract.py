"""Cursors through the use cases, on every backend: only a cursor we issued pages on; anything
else is the client's mistake (InvalidInputError, a 422), never a 500 or a 503."""

from __future__ import annotations

import base64

import pytest

from service.domain.errors import InvalidInputError
from service.ports import NewOrder, PickupRepository
from service.usecases import orders, pagination, stores
from service.usecases.access import Principal
from tests.factories import make_item, make_order, make_store, new_id

ADMIN = Principal("admin")
ID = "0b6c5f64-6a42-4a8b-9a2e-0f1b2c3d4e5f"
CRAFTED_ORDER_CURSORS = [
    pagination.encode("2026-12-01T12:00:00", ID),  # naive: compared with aware instants
    pagination.encode("9999-12-31T23:59:59-23:59", ID),  # past the end of time in UTC
    pagination.encode("0001-01-01T00:00:00+14:00", ID),  # before year 1 in UTC
    pagination.encode("2026-12-01T12:00:00+00:00", "not-an-id"),
    pagination.encode("2026-12-01T12:00:00+00:00", "1" * 400),
    pagination.encode("2026-12-01T12:00:00+00:00", ID.upper()),
    pagination.encode("2026-12-01 12:00:00+00:00", ID),  # not the spelling we issue
    pagination.encode("2026-12-01T12:00:00+01:00", ID),  # we issue UTC only
    pagination.encode("2026-12-01T12:00:00+00:00", ID, "x"),
    pagination.encode("2026-12-01T12:00:00+00:00", ID) + "==",
    pagination.encode("2026-12-01T12:00:00+00:00\x00", ID),
    base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
    "!!!!",
    "a",
]
CRAFTED_STORE_CURSORS = [
    pagination.encode("not-an-id"),
    pagination.encode(ID.upper()),
    pagination.encode("\x00"),
    pagination.encode(ID, ID),
    pagination.encode(ID) + "=",
    "%%%",
]


@pytest.mark.parametrize("cursor", CRAFTED_ORDER_CURSORS)
async def test_a_cursor_we_did_not_issue_is_refused_when_listing_orders(
    repository: PickupRepository, cursor: str
) -> None:
    store = make_store()
    await repository.save_store(store)
    with pytest.raises(InvalidInputError):
        await orders.list_store_orders(
            repository, ADMIN, store.id, status=None, day=None, limit=5, cursor=cursor
        )


@pytest.mark.parametrize("cursor", CRAFTED_STORE_CURSORS)
async def test_a_cursor_we_did_not_issue_is_refused_when_listing_stores(
    repository: PickupRepository, cursor: str
) -> None:
    with pytest.raises(InvalidInputError):
        await stores.list_stores(repository, limit=5, cursor=cursor)


async def test_the_cursors_we_issue_page_through_orders_without_gaps(
    repository: PickupRepository,
) -> None:
    store = make_store()
    item = make_item(store.id)
    await repository.save_store(store)
    await repository.save_menu_item(item)
    placed = [make_order(store, item, id=new_id()) for _ in range(5)]
    for order in placed:
        await repository.create_order(NewOrder(order, capacity=10))
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await orders.list_store_orders(
            repository, ADMIN, store.id, status=None, day=None, limit=2, cursor=cursor
        )
        seen += [o.id for o in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted(o.id for o in placed)
