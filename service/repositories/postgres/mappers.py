"""The PostgreSQL mapping of each entity, once: its columns, its query arguments (domain ->
row) and its row conversion (row -> domain). A new field is a column here and in a migration."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time
from typing import Any

import orjson
from asyncpg import Record

from service.domain.models import (
    MenuItem,
    OpeningInterval,
    Order,
    OrderLine,
    OrderStatus,
    StatusChange,
    Store,
)

STORE_COLUMNS = (
    "id",
    "name",
    "address",
    "timezone",
    "slot_minutes",
    "slot_capacity",
    "lead_time_minutes",
    "accepting_orders",
    "opening_hours",
)
ITEM_COLUMNS = (
    "id",
    "store_id",
    "name",
    "description",
    "category",
    "price_cents",
    "currency",
    "available",
    "tags",
)
ORDER_COLUMNS = (
    "id",
    "store_id",
    "customer_name",
    "customer_phone",
    "total_cents",
    "currency",
    "pickup_slot_start",
    "status",
    "pickup_code",
    "order_token",
    "note",
    "created_at",
    "updated_at",
    "history",
)
LINE_COLUMNS = ("order_id", "line_no", "menu_item_id", "name", "unit_price_cents", "quantity")
KEY_COLUMNS = ("key", "fingerprint", "order_id")


# -- domain -> query arguments -----------------------------------------------------------------


def store_args(store: Store) -> tuple[Any, ...]:
    hours = [
        [i.weekday, i.opens.strftime("%H:%M"), i.closes.strftime("%H:%M")]
        for i in store.opening_hours
    ]
    return (
        store.id,
        store.name,
        store.address,
        store.timezone,
        store.slot_minutes,
        store.slot_capacity,
        store.lead_time_minutes,
        store.accepting_orders,
        orjson.dumps(hours).decode(),
    )


def item_args(item: MenuItem) -> tuple[Any, ...]:
    return (
        item.id,
        item.store_id,
        item.name,
        item.description,
        item.category,
        item.price_cents,
        item.currency,
        item.available,
        list(item.tags),
    )


def order_args(order: Order) -> tuple[Any, ...]:
    history = [[h.status.value, h.at.isoformat(), h.actor] for h in order.history]
    return (
        order.id,
        order.store_id,
        order.customer_name,
        order.customer_phone,
        order.total_cents,
        order.currency,
        order.pickup_slot_start,
        order.status.value,
        order.pickup_code,
        order.order_token,
        order.note,
        order.created_at,
        order.updated_at,
        orjson.dumps(history).decode(),
    )


def line_arrays(lines: Sequence[OrderLine]) -> tuple[list[str], list[str], list[int], list[int]]:
    return (
        [ln.menu_item_id for ln in lines],
        [ln.name for ln in lines],
        [ln.unit_price_cents for ln in lines],
        [ln.quantity for ln in lines],
    )


def line_records(order: Order) -> Iterable[tuple[Any, ...]]:
    for no, ln in enumerate(order.lines, start=1):
        yield (order.id, no, ln.menu_item_id, ln.name, ln.unit_price_cents, ln.quantity)


# -- rows -> domain ----------------------------------------------------------------------------


def store_from_row(row: Record) -> Store:
    return Store(
        id=str(row["id"]),
        name=row["name"],
        address=row["address"],
        timezone=row["timezone"],
        slot_minutes=row["slot_minutes"],
        slot_capacity=row["slot_capacity"],
        lead_time_minutes=row["lead_time_minutes"],
        accepting_orders=row["accepting_orders"],
        opening_hours=tuple(
            OpeningInterval(day, time.fromisoformat(opens), time.fromisoformat(closes))
            for day, opens, closes in orjson.loads(row["opening_hours"])
        ),
    )


def item_from_row(row: Record) -> MenuItem:
    return MenuItem(
        id=str(row["id"]),
        store_id=str(row["store_id"]),
        name=row["name"],
        description=row["description"],
        category=row["category"],
        price_cents=row["price_cents"],
        currency=row["currency"],
        available=row["available"],
        tags=tuple(row["tags"]),
    )


def order_from_row(row: Record, lines: Iterable[Sequence[Any]]) -> Order:
    """`lines`: (menu_item_id, name, unit_price_cents, quantity) in line order."""
    return Order(
        id=str(row["id"]),
        store_id=str(row["store_id"]),
        customer_name=row["customer_name"],
        customer_phone=row["customer_phone"],
        lines=tuple(OrderLine(str(i), n, p, q) for i, n, p, q in lines),
        total_cents=row["total_cents"],
        currency=row["currency"],
        pickup_slot_start=row["pickup_slot_start"],
        status=OrderStatus(row["status"]),
        pickup_code=row["pickup_code"],
        order_token=row["order_token"],
        note=row["note"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        history=tuple(
            StatusChange(OrderStatus(s), datetime.fromisoformat(at), actor)
            for s, at, actor in orjson.loads(row["history"])
        ),
    )


def line_tuples(rows: Iterable[Record]) -> list[tuple[Any, ...]]:
    return [(r["menu_item_id"], r["name"], r["unit_price_cents"], r["quantity"]) for r in rows]
