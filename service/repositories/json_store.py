"""The embedded backend: all data in memory, persisted to one JSON file on every write.

Durability: each write serialises the whole state to a temporary file beside the data file,
fsyncs it, renames it over the old file and fsyncs the directory, all before the request is
answered. A crash at any instant leaves the old file or the new one, never a torn one. One
process owns the file (config refuses WEB_CONCURRENCY>1 with this backend), and an asyncio lock
makes each check-then-write (slot capacity, idempotency, status change) atomic.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from service.domain import booking
from service.domain.errors import NotFoundError
from service.domain.models import MenuItem, Order, OrderStatus, Store
from service.errors import DataFileError
from service.ports import Dataset, IdempotencyKey
from service.repositories import records as rec


class JsonFileRepository:
    backend = "json"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._clear()

    def _clear(self) -> None:
        self._stores: dict[str, Store] = {}
        self._items: dict[str, MenuItem] = {}
        self._orders: dict[str, Order] = {}
        self._idempotency: dict[str, tuple[str, str]] = {}  # key -> (fingerprint, order id)
        self._menu_by_store: dict[str, list[str]] = defaultdict(list)
        self._orders_by_store: dict[str, list[str]] = defaultdict(list)
        # The encoded form of every record, kept current so a write does not re-encode the world.
        self._records: dict[str, dict[str, dict[str, Any]]] = {
            "stores": {},
            "menu_items": {},
            "orders": {},
        }

    @classmethod
    async def open(cls, path: Path) -> JsonFileRepository:
        repo = cls(path)
        # A write killed mid-way leaves its temp file (a full copy of the data); the data file
        # itself is whole, so the leftovers are garbage. One process owns the file, so none
        # of them can belong to a live write.
        for orphan in await asyncio.to_thread(
            lambda: list(path.parent.glob(f".{path.name}.*.tmp"))
        ):
            await asyncio.to_thread(orphan.unlink, True)
        if await asyncio.to_thread(path.exists):
            try:
                raw = await asyncio.to_thread(path.read_bytes)
                data = rec.dataset_from_document(orjson.loads(raw))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise DataFileError(
                    f"cannot read the data file {path}: {exc}. It was left untouched; restore it "
                    "from a backup or move it aside to start empty."
                ) from exc
            repo._load(data)
        return repo

    async def ping(self) -> None:
        directory = self.path.parent
        if not os.access(directory if directory.exists() else Path("."), os.W_OK):
            raise OSError(f"data directory {directory} is not writable")

    async def aclose(self) -> None:
        return None

    async def is_empty(self) -> bool:
        return not self._stores

    async def list_stores(self, *, limit: int, after: str | None) -> list[Store]:
        ids = sorted(self._stores)
        if after is not None:
            ids = [i for i in ids if i > after]
        return [self._stores[i] for i in ids[:limit]]

    async def get_store(self, store_id: str) -> Store | None:
        return self._stores.get(store_id)

    async def save_store(self, store: Store) -> None:
        async with self._lock:
            previous = self._stores.get(store.id)
            self._put_store(store)
            await self._persist(undo=lambda: self._restore_store(store.id, previous))

    async def list_menu(self, store_id: str) -> list[MenuItem]:
        return [self._items[i] for i in self._menu_by_store.get(store_id, ())]

    async def get_menu_item(self, item_id: str) -> MenuItem | None:
        return self._items.get(item_id)

    async def save_menu_item(self, item: MenuItem) -> None:
        async with self._lock:
            previous = self._items.get(item.id)
            self._put_item(item)
            await self._persist(undo=lambda: self._restore_item(item, previous))

    async def held_by_slot(
        self, store_id: str, start: datetime, end: datetime
    ) -> dict[datetime, int]:
        held: dict[datetime, int] = defaultdict(int)
        for order_id in self._orders_by_store.get(store_id, ()):
            order = self._orders[order_id]
            if order.holds_slot and start <= order.pickup_slot_start < end:
                held[order.pickup_slot_start.astimezone(UTC)] += 1
        return dict(held)

    async def create_order(
        self,
        order: Order,
        *,
        capacity: int,
        idempotency: IdempotencyKey | None,
        phone_cap: int | None = None,
    ) -> tuple[Order, bool]:
        async with self._lock:
            if idempotency is not None and (earlier := await self.get_idempotent(idempotency.key)):
                return booking.replay(earlier, idempotency.fingerprint), False
            if phone_cap is not None:
                phone = booking.phone_key(order.customer_phone)
                active = sum(
                    1
                    for oid in self._orders_by_store.get(order.store_id, ())
                    if self._orders[oid].status in booking.ACTIVE_STATUSES
                    and booking.phone_key(self._orders[oid].customer_phone) == phone
                )
                booking.ensure_under_cap(active=active, cap=phone_cap)
            held = sum(
                1
                for oid in self._orders_by_store.get(order.store_id, ())
                if self._orders[oid].holds_slot
                and self._orders[oid].pickup_slot_start == order.pickup_slot_start
            )
            booking.ensure_room(order.pickup_slot_start, held=held, capacity=capacity)
            self._put_order(order)
            if idempotency is not None:
                self._idempotency[idempotency.key] = (idempotency.fingerprint, order.id)

            def undo() -> None:
                self._drop_order(order)
                if idempotency is not None:
                    self._idempotency.pop(idempotency.key, None)

            await self._persist(undo=undo)
            return order, True

    async def get_order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    async def get_idempotent(self, key: str) -> tuple[str, Order] | None:
        found = self._idempotency.get(key)
        return None if found is None else (found[0], self._orders[found[1]])

    async def update_order(self, order_id: str, change: Callable[[Order], Order]) -> Order:
        async with self._lock:
            current = self._orders.get(order_id)
            if current is None:
                raise NotFoundError("no order with this id")
            updated = change(current)
            self._put_order(updated)
            await self._persist(undo=lambda: self._put_order(current))
            return updated

    async def list_orders(
        self,
        store_id: str,
        *,
        status: OrderStatus | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Order]:
        found = [
            o
            for o in (self._orders[i] for i in self._orders_by_store.get(store_id, ()))
            if (status is None or o.status == status)
            and (start is None or o.pickup_slot_start >= start)
            and (end is None or o.pickup_slot_start < end)
            and (after is None or (o.pickup_slot_start, o.id) > after)
        ]
        found.sort(key=lambda o: (o.pickup_slot_start, o.id))
        return found[:limit]

    async def import_dataset(self, data: Dataset) -> None:
        async with self._lock:
            snapshot = await self.export_dataset()
            self._load(data)
            await self._persist(undo=lambda: self._reset(snapshot))

    async def bulk_load(
        self,
        stores: Iterable[Store],
        menu_items: Iterable[MenuItem],
        orders: Iterable[Order],
        idempotency: Iterable[tuple[IdempotencyKey, str]] = (),
    ) -> int:
        # Everything lives in memory here anyway, so the orders are gathered first.
        data = Dataset(list(stores), list(menu_items), list(orders), list(idempotency))
        await self.import_dataset(data)
        return len(data.orders)

    async def export_dataset(self) -> Dataset:
        return Dataset(
            stores=list(self._stores.values()),
            menu_items=list(self._items.values()),
            orders=list(self._orders.values()),
            idempotency=[
                (IdempotencyKey(k, fp), oid) for k, (fp, oid) in self._idempotency.items()
            ],
        )

    # -- state ------------------------------------------------------------------------------

    def _reset(self, data: Dataset) -> None:
        self._clear()
        self._load(data)

    def _load(self, data: Dataset) -> None:
        for store in data.stores:
            self._put_store(store)
        for item in data.menu_items:
            self._put_item(item)
        for order in data.orders:
            self._put_order(order)
        for key, order_id in data.idempotency:
            self._idempotency[key.key] = (key.fingerprint, order_id)

    def _put_store(self, store: Store) -> None:
        self._stores[store.id] = store
        self._records["stores"][store.id] = rec.store_to_record(store)

    def _restore_store(self, store_id: str, previous: Store | None) -> None:
        if previous is None:
            self._stores.pop(store_id, None)
            self._records["stores"].pop(store_id, None)
        else:
            self._put_store(previous)

    def _put_item(self, item: MenuItem) -> None:
        if item.id not in self._items:
            self._menu_by_store[item.store_id].append(item.id)
        self._items[item.id] = item
        self._records["menu_items"][item.id] = rec.item_to_record(item)

    def _restore_item(self, item: MenuItem, previous: MenuItem | None) -> None:
        if previous is None:
            self._items.pop(item.id, None)
            self._records["menu_items"].pop(item.id, None)
            self._menu_by_store[item.store_id].remove(item.id)
        else:
            self._put_item(previous)

    def _put_order(self, order: Order) -> None:
        if order.id not in self._orders:
            self._orders_by_store[order.store_id].append(order.id)
        self._orders[order.id] = order
        self._records["orders"][order.id] = rec.order_to_record(order)

    def _drop_order(self, order: Order) -> None:
        self._orders.pop(order.id, None)
        self._records["orders"].pop(order.id, None)
        self._orders_by_store[order.store_id].remove(order.id)

    async def _persist(self, *, undo: Callable[[], None]) -> None:
        document = {
            "format": "pickup-data",
            "version": rec.FORMAT_VERSION,
            "stores": list(self._records["stores"].values()),
            "menu_items": list(self._records["menu_items"].values()),
            "orders": list(self._records["orders"].values()),
            "idempotency": [[k, fp, oid] for k, (fp, oid) in self._idempotency.items()],
        }
        try:
            await asyncio.to_thread(atomic_write, self.path, orjson.dumps(document))
        except BaseException:
            # The write never reached disk, so memory must not claim it did.
            undo()
            raise


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
