"""The repository ports, sized by role. Every backend implements all of them and passes the one
contract suite in tests/contract; each use case asks only for the roles it uses.

- `Catalogue`: stores and their menus.
- `Availability`: how full the pickup slots are.
- `OrderBook`: booking and changing orders, idempotent retries included.
- `BulkTransfer`: whole datasets in and out (seeding, backups, a backend switch).
- `Backend`: liveness and lifetime of the adapter itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Protocol

from service.domain.models import MenuItem, Order, OrderStatus, Store


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    key: str
    fingerprint: str  # hash of the request it first came with


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order to book and what its booking must respect: the slot's `capacity`, at most
    `phone_cap` live orders of the customer's phone at this store (None: no cap), and the
    Idempotency-Key the request came with."""

    order: Order
    _: KW_ONLY
    capacity: int
    idempotency: IdempotencyKey | None = None
    phone_cap: int | None = None


@dataclass(frozen=True, slots=True)
class Dataset:
    stores: Sequence[Store]
    menu_items: Sequence[MenuItem]
    # A list when exported or read from a file; an import may stream a one-pass iterable (a
    # generator), which a backend may load in batches so that it never sits in memory whole.
    orders: Iterable[Order]
    idempotency: Sequence[tuple[IdempotencyKey, str]] = ()  # (key, order id)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderQuery:
    """A store's orders by (pickup_slot_start, id): slot start in [start, end), with `status`,
    after the cursor `after` (the last order seen), at most `limit`. A None filter is off."""

    store_id: str
    limit: int
    status: OrderStatus | None = None
    start: datetime | None = None
    end: datetime | None = None
    after: tuple[datetime, str] | None = None  # (pickup_slot_start, id)


class Backend(Protocol):
    backend: str

    async def ping(self) -> None:
        """Raise when the backend cannot serve requests."""

    async def aclose(self) -> None: ...

    async def is_empty(self) -> bool: ...


class Catalogue(Protocol):
    async def list_stores(self, *, limit: int, after: str | None) -> list[Store]: ...

    async def get_store(self, store_id: str) -> Store | None: ...

    async def save_store(self, store: Store) -> None: ...

    async def update_store(self, store_id: str, change: Callable[[Store], Store]) -> Store:
        """Apply `change` to the current store atomically (concurrent edits take turns, none is
        lost); raise NotFoundError if absent."""

    async def list_menu(self, store_id: str) -> list[MenuItem]: ...

    async def get_menu_item(self, item_id: str) -> MenuItem | None: ...

    async def save_menu_item(self, item: MenuItem) -> None: ...

    async def update_menu_item(
        self, item_id: str, change: Callable[[MenuItem], MenuItem]
    ) -> MenuItem:
        """Apply `change` to the current menu item atomically; raise NotFoundError if absent."""


class Availability(Protocol):
    async def held_by_slot(
        self, store_id: str, start: datetime, end: datetime
    ) -> dict[datetime, int]:
        """Live orders per slot start (UTC) for slots starting in [start, end)."""


class OrderBook(Protocol):
    async def create_order(self, new: NewOrder) -> tuple[Order, bool]:
        """Atomically: replay an idempotent retry, or check slot capacity (and, with
        `phone_cap`, the customer phone's active orders at this store) and insert.

        Returns (order, created). Decides with `domain.booking`: IdempotencyConflictError when
        the key came with a different request, SlotFullError when the slot is full,
        TooManyLiveOrdersError when the phone is at its cap. Bookings by one phone at one store
        are serialised, so concurrent requests never exceed the cap.
        """

    async def get_order(self, order_id: str) -> Order | None: ...

    async def get_idempotent(self, key: str) -> tuple[str, Order] | None:
        """(fingerprint, order) recorded for an Idempotency-Key, if any."""

    async def update_order(self, order_id: str, change: Callable[[Order], Order]) -> Order:
        """Apply `change` to the current order atomically; raise NotFoundError if absent."""

    async def list_orders(self, query: OrderQuery) -> list[Order]: ...


class BulkTransfer(Protocol):
    async def import_dataset(self, data: Dataset) -> int:
        """Upsert everything in one unit of work (seeding, backups, a backend switch).
        Returns the number of orders loaded."""

    async def export_dataset(self) -> Dataset: ...


class StoreFront(Catalogue, Availability, Protocol):
    """What browsing needs: the catalogue and the slots' occupancy."""


class Booking(Catalogue, OrderBook, Protocol):
    """What placing and handling orders needs: the menu to price from and the order book."""


class PickupRepository(Backend, Catalogue, Availability, OrderBook, BulkTransfer, Protocol):
    """Every role at once: what the composition root builds and hands to the HTTP layer."""
