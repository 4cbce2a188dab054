from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, time


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


# Orders in these states no longer hold their slot.
RELEASED_STATUSES = frozenset({OrderStatus.CANCELLED, OrderStatus.REJECTED})

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class OpeningInterval:
    weekday: int  # 0 = Monday, as datetime.weekday()
    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    name: str
    address: str
    timezone: str
    slot_minutes: int
    slot_capacity: int
    lead_time_minutes: int
    accepting_orders: bool
    opening_hours: tuple[OpeningInterval, ...]


@dataclass(frozen=True, slots=True)
class MenuItem:
    id: str
    store_id: str
    name: str
    description: str
    category: str
    price_cents: int
    currency: str
    available: bool
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderLine:
    menu_item_id: str
    name: str
    unit_price_cents: int
    quantity: int

    @property
    def line_total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: OrderStatus
    at: datetime
    actor: str  # "customer" | "staff" | "system"


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    store_id: str
    customer_name: str
    customer_phone: str
    lines: tuple[OrderLine, ...]
    total_cents: int
    currency: str
    pickup_slot_start: datetime
    status: OrderStatus
    pickup_code: str
    order_token: str
    note: str | None
    created_at: datetime
    updated_at: datetime
    history: tuple[StatusChange, ...] = field(default=())

    @property
    def holds_slot(self) -> bool:
        return self.status not in RELEASED_STATUSES


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    capacity: int
    remaining: int
    bookable: bool
