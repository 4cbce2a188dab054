from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.domain import slots
from service.domain.errors import NotFoundError
from service.domain.models import MenuItem, Slot, Store
from service.ports import Catalogue, StoreFront
from service.usecases import pagination
from service.usecases.access import Principal, require_staff


async def list_stores(
    repo: Catalogue, *, limit: int, cursor: str | None
) -> tuple[list[Store], str | None]:
    after = pagination.decode_id_cursor(cursor) if cursor else None
    # One extra row tells whether another page exists without a count query.
    found = await repo.list_stores(limit=limit + 1, after=after)
    page = found[:limit]
    next_cursor = pagination.encode(page[-1].id) if len(found) > limit else None
    return page, next_cursor


async def get_store(repo: Catalogue, store_id: str) -> Store:
    store = await repo.get_store(store_id)
    if store is None:
        raise NotFoundError("no store with this id", details={"store_id": store_id})
    return store


async def get_menu(repo: Catalogue, store_id: str) -> list[MenuItem]:
    await get_store(repo, store_id)
    return await repo.list_menu(store_id)


async def get_slots(
    repo: StoreFront, store_id: str, day: date, *, now: datetime
) -> tuple[Store, list[Slot]]:
    store = await get_store(repo, store_id)
    tz = ZoneInfo(store.timezone)
    # Generous bounds: the local day in UTC, plus a day either side for odd offsets.
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC) - timedelta(days=1)
    held = await repo.held_by_slot(store_id, start, start + timedelta(days=3))
    return store, slots.availability(store, day, now=now, held=held)


async def create_store(repo: Catalogue, principal: Principal, fields: dict[str, Any]) -> Store:
    require_staff(principal, None)
    store = Store(id=str(uuid.uuid4()), **fields)
    await repo.save_store(store)
    return store


async def update_store(
    repo: Catalogue, principal: Principal, store_id: str, changes: dict[str, Any]
) -> Store:
    require_staff(principal, store_id)
    store = replace(await get_store(repo, store_id), **changes)
    await repo.save_store(store)
    return store


async def create_menu_item(
    repo: Catalogue, principal: Principal, store_id: str, fields: dict[str, Any]
) -> MenuItem:
    require_staff(principal, store_id)
    await get_store(repo, store_id)
    item = MenuItem(id=str(uuid.uuid4()), store_id=store_id, **fields)
    await repo.save_menu_item(item)
    return item


async def update_menu_item(
    repo: Catalogue,
    principal: Principal,
    store_id: str,
    item_id: str,
    changes: dict[str, Any],
) -> MenuItem:
    require_staff(principal, store_id)
    item = await repo.get_menu_item(item_id)
    if item is None or item.store_id != store_id:
        raise NotFoundError("no menu item with this id in this store", details={"item_id": item_id})
    item = replace(item, **changes)
    await repo.save_menu_item(item)
    return item
