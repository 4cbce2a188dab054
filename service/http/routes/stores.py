from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.domain import slots
from service.domain.models import WEEKDAYS, OpeningInterval
from service.http import parsing, presenters
from service.http import schemas as s
from service.http.auth import principal
from service.http.caching import (
    MENU_ENTITY,
    SLOTS_ENTITY,
    STORE_ENTITY,
    STORES_ENTITY,
    VOLATILE_CACHE_CONTROL,
    cached_json,
    revalidated,
)
from service.http.context import context
from service.http.endpoint import Endpoint
from service.http.responses import JSONResponse
from service.ports import Catalogue
from service.usecases import stores

# How long a kept slots ETag is trusted at most (see get_slots).
SLOTS_KEPT = timedelta(seconds=30)


async def list_stores(request: Request) -> Response:
    q = parsing.query(request, s.PageQuery)
    repo = context(request).repo

    async def load() -> dict[str, Any]:
        found, cursor = await stores.list_stores(repo, limit=q.limit, cursor=q.cursor)
        return presenters.page([presenters.store(x) for x in found], cursor)

    return await cached_json(
        request,
        cache_name="store_list",
        entity=STORES_ENTITY,
        variant=f"{q.limit}:{q.cursor}",
        load=load,
    )


async def _cached_for_store(
    request: Request,
    cache_name: str,
    entity: str,
    present: Callable[[Catalogue, str], Awaitable[dict[str, Any]]],
) -> Response:
    """A read of one store's data with no query: one cached body per store, under `entity`
    (a template taking the store id) so that a write to it invalidates the body."""
    store_id = parsing.path_id(request, "store_id", "store")
    repo = context(request).repo
    return await cached_json(
        request,
        cache_name=cache_name,
        entity=entity.format(store_id=store_id),
        variant="body",
        load=lambda: present(repo, store_id),
    )


async def _store(repo: Catalogue, store_id: str) -> dict[str, Any]:
    return presenters.store(await stores.get_store(repo, store_id))


async def _menu(repo: Catalogue, store_id: str) -> dict[str, Any]:
    items = await stores.get_menu(repo, store_id)
    return presenters.page([presenters.menu_item(i) for i in items], None)


async def get_store(request: Request) -> Response:
    return await _cached_for_store(request, "store", STORE_ENTITY, _store)


async def get_menu(request: Request) -> Response:
    return await _cached_for_store(request, "menu", MENU_ENTITY, _menu)


async def get_slots(request: Request) -> Response:
    """A revalidation (If-None-Match) is answered 304 from the ETag kept for this store and day,
    with no backend work, until an order or store write retires it (SLOTS_ENTITY), a slot
    changes by the clock (slots.next_change), or SLOTS_KEPT passes: workers with their own
    in-process cache do not see each other's orders, so none trusts a kept ETag for longer."""
    store_id = parsing.path_id(request, "store_id", "store")
    q = parsing.query(request, s.SlotsQuery)
    ctx = context(request)
    now = ctx.clock()

    async def view() -> tuple[Any, datetime]:
        store, found = await stores.get_slots(ctx.repo, store_id, q.date, now=now)
        changes = slots.next_change(store, q.date, now=now)
        kept_until = now + SLOTS_KEPT if changes is None else min(changes, now + SLOTS_KEPT)
        return presenters.page([presenters.slot(x) for x in found], None), kept_until

    return await revalidated(
        request,
        cache_name="slots",
        entity=SLOTS_ENTITY,
        variant=f"{store_id}/{q.date.isoformat()}",
        load=view,
        cache_control=VOLATILE_CACHE_CONTROL,
        now=now,
    )


def _store_fields(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("opening_hours") is not None:
        values["opening_hours"] = tuple(
            OpeningInterval(
                WEEKDAYS.index(day), time.fromisoformat(i["opens"]), time.fromisoformat(i["closes"])
            )
            for day, intervals in values["opening_hours"].items()
            for i in intervals
        )
    return values


async def create_store(request: Request) -> Response:
    who = principal(request)
    data, _ = await parsing.body(request, s.StoreIn)
    store = await stores.create_store(context(request).repo, who, _store_fields(data.model_dump()))
    return JSONResponse(
        presenters.store(store), status_code=201, headers={"Location": f"/v1/stores/{store.id}"}
    )


async def update_store(request: Request) -> Response:
    who = principal(request)
    store_id = parsing.path_id(request, "store_id", "store")
    data, _ = await parsing.body(request, s.StorePatch)
    changes = _store_fields(data.model_dump(exclude_unset=True, exclude_none=True))
    store = await stores.update_store(context(request).repo, who, store_id, changes)
    return JSONResponse(presenters.store(store))


async def create_menu_item(request: Request) -> Response:
    who = principal(request)
    store_id = parsing.path_id(request, "store_id", "store")
    data, _ = await parsing.body(request, s.MenuItemIn)
    fields = data.model_dump()
    fields["tags"] = tuple(fields["tags"])
    item = await stores.create_menu_item(context(request).repo, who, store_id, fields)
    return JSONResponse(presenters.menu_item(item), status_code=201)


async def update_menu_item(request: Request) -> Response:
    who = principal(request)
    store_id = parsing.path_id(request, "store_id", "store")
    item_id = parsing.path_id(request, "item_id", "menu item")
    data, _ = await parsing.body(request, s.MenuItemPatch)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "tags" in changes:
        changes["tags"] = tuple(changes["tags"])
    item = await stores.update_menu_item(context(request).repo, who, store_id, item_id, changes)
    return JSONResponse(presenters.menu_item(item))


STORE = "/v1/stores/{store_id}"
ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/stores",
        list_stores,
        "List stores",
        "stores",
        s.StoreList,
        query=s.PageQuery,
    ),
    Endpoint("GET", STORE, get_store, "Get a store", "stores", s.StoreOut),
    Endpoint("GET", f"{STORE}/menu", get_menu, "A store's menu", "stores", s.MenuList),
    Endpoint(
        "GET",
        f"{STORE}/slots",
        get_slots,
        "Pickup slots of one day",
        "stores",
        s.SlotList,
        query=s.SlotsQuery,
    ),
    Endpoint(
        "POST",
        "/v1/stores",
        create_store,
        "Create a store",
        "staff",
        s.StoreOut,
        status=201,
        body=s.StoreIn,
        auth="staff",
        invalidates=(STORES_ENTITY,),
    ),
    Endpoint(
        "PATCH",
        STORE,
        update_store,
        "Update a store",
        "staff",
        s.StoreOut,
        body=s.StorePatch,
        auth="staff",
        invalidates=(STORES_ENTITY, STORE_ENTITY, SLOTS_ENTITY),
    ),
    Endpoint(
        "POST",
        f"{STORE}/menu",
        create_menu_item,
        "Add a menu item",
        "staff",
        s.MenuItemOut,
        status=201,
        body=s.MenuItemIn,
        auth="staff",
        invalidates=(MENU_ENTITY,),
    ),
    Endpoint(
        "PATCH",
        f"{STORE}/menu/{{item_id}}",
        update_menu_item,
        "Update a menu item",
        "staff",
        s.MenuItemOut,
        body=s.MenuItemPatch,
        auth="staff",
        invalidates=(MENU_ENTITY,),
    ),
]
