"""The embedded backend: all data in memory, persisted to one JSON file on every write.

Durability: each write streams the whole state to a temporary file beside the data file (mode
0600: it holds order tokens, pickup codes and phone numbers), fsyncs it, renames it over the old
file and fsyncs the directory, all before the request is answered. A crash at any instant leaves
the old file or the new one, never a torn one. An asyncio lock makes each check-then-write (slot
capacity, idempotency, status change) atomic and keeps writes acknowledged in order.

One writer: a process that may write the file holds an exclusive `flock` on a sibling lock file
(`<name>.lock`) from open to close, so a second `pickup serve`, `pickup seed` or
`pickup data import` on a live file refuses to start (DataFileLockedError) instead of replacing
the first one's acknowledged writes. Readers (`pickup data export`) take no lock: renames make
every read see a whole file.

The event loop never serialises the dataset: every record is kept encoded (orjson bytes, redone
only when the record changes), and a thread joins and writes them in chunks, so the loop answers
other requests while a large file is written.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import orjson

from service.domain import booking
from service.domain.errors import NotFoundError
from service.domain.models import MenuItem, Order, Store
from service.errors import DataFileError
from service.ports import Dataset, IdempotencyKey, NewOrder, OrderQuery
from service.repositories import records as rec
from service.repositories.datafile import acquire_write_lock, atomic_write_chunks, document_chunks

T = TypeVar("T")


class _OwnedByStore(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def store_id(self) -> str: ...


Owned = TypeVar("Owned", bound=_OwnedByStore)


class JsonFileRepository:
    backend = "json"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._file_lock: int | None = None  # the fd holding the flock, while we may write
        self._clear()

    def _clear(self) -> None:
        self._stores: dict[str, Store] = {}
        self._items: dict[str, MenuItem] = {}
        self._orders: dict[str, Order] = {}
        self._idempotency: dict[str, tuple[str, str]] = {}  # key -> (fingerprint, order id)
        self._menu_by_store: dict[str, list[str]] = defaultdict(list)
        self._orders_by_store: dict[str, list[str]] = defaultdict(list)
        # The encoded form of every record, kept current so a write does not re-encode the world.
        self._records: dict[str, dict[str, bytes]] = {
            "stores": {},
            "menu_items": {},
            "orders": {},
        }

    @classmethod
    async def open(cls, path: Path, *, writable: bool = True) -> JsonFileRepository:
        """Load the file. `writable` (the default) takes the write lock first and keeps it until
        `aclose`; DataFileLockedError when another process holds it. A read-only repository
        refuses every write."""
        repo = cls(path)
        if writable:
            repo._file_lock = await asyncio.to_thread(acquire_write_lock, path)
            # A write killed mid-way leaves its temp file (a full copy of the data); the data
            # file itself is whole, so the leftovers are garbage. Every writer holds the lock we
            # now hold, so none of them can belong to a live write of another process.
            for orphan in await asyncio.to_thread(
                lambda: list(path.parent.glob(f".{path.name}.*.tmp"))
            ):
                await asyncio.to_thread(orphan.unlink, True)
        try:
            await repo._read_file()
        except BaseException:
            await repo.aclose()
            raise
        # The dataset lives as long as the process: leave it out of the cyclic collector's full
        # passes, which on 100,000 orders would stop the event loop for a few hundred ms.
        gc.freeze()
        return repo

    async def _read_file(self) -> None:
        path = self.path
        if await asyncio.to_thread(path.exists):
            try:
                raw = await asyncio.to_thread(path.read_bytes)
                data = rec.dataset_from_document(orjson.loads(raw))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise DataFileError(
                    f"cannot read the data file {path}: {exc}. It was left untouched; restore it "
                    "from a backup or move it aside to start empty."
                ) from exc
            self._load(data)

    async def ping(self) -> None:
        directory = self.path.parent
        if not os.access(directory if directory.exists() else Path("."), os.W_OK):
            raise OSError(f"data directory {directory} is not writable")

    async def aclose(self) -> None:
        if self._file_lock is not None:
            os.close(self._file_lock)  # closing the fd releases the flock
            self._file_lock = None

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
        restore = partial(self._restore_store, store.id)
        await self._save(self._stores, store.id, store, self._put_store, restore)

    async def update_store(self, store_id: str, change: Callable[[Store], Store]) -> Store:
        missing = NotFoundError("no store with this id", details={"store_id": store_id})
        return await self._update(self._stores, store_id, change, self._put_store, missing)

    async def list_menu(self, store_id: str) -> list[MenuItem]:
        return [self._items[i] for i in self._menu_by_store.get(store_id, ())]

    async def get_menu_item(self, item_id: str) -> MenuItem | None:
        return self._items.get(item_id)

    async def save_menu_item(self, item: MenuItem) -> None:
        restore = partial(self._restore_item, item)
        await self._save(self._items, item.id, item, self._put_item, restore)

    async def update_menu_item(
        self, item_id: str, change: Callable[[MenuItem], MenuItem]
    ) -> MenuItem:
        missing = NotFoundError("no menu item with this id", details={"item_id": item_id})
        return await self._update(self._items, item_id, change, self._put_item, missing)

    async def held_by_slot(
        self, store_id: str, start: datetime, end: datetime
    ) -> dict[datetime, int]:
        held: dict[datetime, int] = defaultdict(int)
        for order_id in self._orders_by_store.get(store_id, ()):
            order = self._orders[order_id]
            if order.holds_slot and start <= order.pickup_slot_start < end:
                held[order.pickup_slot_start.astimezone(UTC)] += 1
        return dict(held)

    async def create_order(self, new: NewOrder) -> tuple[Order, bool]:
        order, idempotency = new.order, new.idempotency
        async with self._lock:
            if idempotency is not None and (earlier := await self.get_idempotent(idempotency.key)):
                return booking.replay(earlier, idempotency.fingerprint), False
            if new.phone_cap is not None:
                phone = booking.phone_key(order.customer_phone)
                active = sum(
                    1
                    for oid in self._orders_by_store.get(order.store_id, ())
                    if self._orders[oid].status in booking.ACTIVE_STATUSES
                    and booking.phone_key(self._orders[oid].customer_phone) == phone
                )
                booking.ensure_under_cap(active=active, cap=new.phone_cap)
            held = sum(
                1
                for oid in self._orders_by_store.get(order.store_id, ())
                if self._orders[oid].holds_slot
                and self._orders[oid].pickup_slot_start == order.pickup_slot_start
            )
            booking.ensure_room(order.pickup_slot_start, held=held, capacity=new.capacity)
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
        missing = NotFoundError("no order with this id")
        return await self._update(self._orders, order_id, change, self._put_order, missing)

    async def list_orders(self, query: OrderQuery) -> list[Order]:
        status, start, end, after = query.status, query.start, query.end, query.after
        found = [
            o
            for o in (self._orders[i] for i in self._orders_by_store.get(query.store_id, ()))
            if (status is None or o.status == status)
            and (start is None or o.pickup_slot_start >= start)
            and (end is None or o.pickup_slot_start < end)
            and (after is None or (o.pickup_slot_start, o.id) > after)
        ]
        found.sort(key=lambda o: (o.pickup_slot_start, o.id))
        return found[: query.limit]

    async def import_dataset(self, data: Dataset) -> int:
        # Everything lives in memory here anyway, so the orders are gathered first.
        orders = list(data.orders)
        async with self._lock:
            snapshot = await self.export_dataset()
            self._load(replace(data, orders=orders))
            await self._persist(undo=lambda: self._reset(snapshot))
        return len(orders)

    async def export_dataset(self) -> Dataset:
        return Dataset(
            stores=list(self._stores.values()),
            menu_items=list(self._items.values()),
            orders=list(self._orders.values()),
            idempotency=[
                (IdempotencyKey(k, fp), oid) for k, (fp, oid) in self._idempotency.items()
            ],
        )

    async def _save(
        self,
        records: dict[str, T],
        record_id: str,
        record: T,
        put: Callable[[T], None],
        restore: Callable[[T | None], None],
    ) -> None:
        """Insert or replace one record under the lock; memory goes back to what it held
        before (`restore(previous)`, None: nothing) when the write fails."""
        async with self._lock:
            previous = records.get(record_id)
            put(record)
            await self._persist(undo=lambda: restore(previous))

    async def _update(
        self,
        records: dict[str, T],
        record_id: str,
        change: Callable[[T], T],
        put: Callable[[T], None],
        missing: NotFoundError,
    ) -> T:
        """Read, change and write one record under the lock, so concurrent edits take turns and
        none is lost; memory goes back to the record as it was when the write fails."""
        async with self._lock:
            current = records.get(record_id)
            if current is None:
                raise missing
            updated = change(current)
            put(updated)
            await self._persist(undo=lambda: put(current))
            return updated

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
        self._records["stores"][store.id] = orjson.dumps(rec.store_to_record(store))

    def _restore_store(self, store_id: str, previous: Store | None) -> None:
        if previous is None:
            self._stores.pop(store_id, None)
            self._records["stores"].pop(store_id, None)
        else:
            self._put_store(previous)

    def _put_item(self, item: MenuItem) -> None:
        encoded = orjson.dumps(rec.item_to_record(item))
        self._put_owned("menu_items", self._items, self._menu_by_store, item, encoded)

    def _restore_item(self, item: MenuItem, previous: MenuItem | None) -> None:
        if previous is None:
            self._drop_owned("menu_items", self._items, self._menu_by_store, item)
        else:
            self._put_item(previous)

    def _put_order(self, order: Order) -> None:
        encoded = orjson.dumps(rec.order_to_record(order))
        self._put_owned("orders", self._orders, self._orders_by_store, order, encoded)

    def _drop_order(self, order: Order) -> None:
        self._drop_owned("orders", self._orders, self._orders_by_store, order)

    # Menu items and orders belong to a store: each is kept by id, listed in its store's index
    # in insertion order, and encoded under its table's name.
    def _put_owned(
        self,
        table: str,
        rows: dict[str, Owned],
        by_store: dict[str, list[str]],
        row: Owned,
        encoded: bytes,
    ) -> None:
        if row.id not in rows:
            by_store[row.store_id].append(row.id)
        rows[row.id] = row
        self._records[table][row.id] = encoded

    def _drop_owned(
        self, table: str, rows: dict[str, Owned], by_store: dict[str, list[str]], row: Owned
    ) -> None:
        rows.pop(row.id, None)
        self._records[table].pop(row.id, None)
        by_store[row.store_id].remove(row.id)

    async def _persist(self, *, undo: Callable[[], None]) -> None:
        if self._file_lock is None:
            undo()
            raise DataFileError(f"{self.path} was opened read-only")
        # Only references are gathered here (about a millisecond for 100,000 orders); joining and
        # writing the encoded records happens in the thread, off the event loop.
        header = orjson.dumps({"format": "pickup-data", "version": rec.FORMAT_VERSION})
        parts = [
            (name, list(self._records[name].values()))
            for name in ("stores", "menu_items", "orders")
        ]
        idempotency = [[k, fp, oid] for k, (fp, oid) in self._idempotency.items()]
        try:
            await asyncio.to_thread(
                atomic_write_chunks, self.path, document_chunks(header, parts, idempotency)
            )
        except BaseException:
            # The write never reached disk, so memory must not claim it did.
            undo()
            raise
