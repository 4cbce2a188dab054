"""Domain objects <-> plain JSON records: the file format and the export format."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, time
from typing import Any

from service.domain.models import (
    MenuItem,
    OpeningInterval,
    Order,
    OrderLine,
    OrderStatus,
    StatusChange,
    Store,
)
from service.ports import Dataset, IdempotencyKey

FORMAT_VERSION = 1


def _fields(obj: Store | MenuItem | Order) -> dict[str, Any]:
    # The record's keys are the dataclass's fields, in order; callers convert what JSON lacks.
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def store_to_record(store: Store) -> dict[str, Any]:
    hours = [
        [i.weekday, i.opens.strftime("%H:%M"), i.closes.strftime("%H:%M")]
        for i in store.opening_hours
    ]
    return {**_fields(store), "opening_hours": hours}


def store_from_record(r: dict[str, Any]) -> Store:
    hours = tuple(
        OpeningInterval(d, time.fromisoformat(o), time.fromisoformat(c))
        for d, o, c in r["opening_hours"]
    )
    return Store(**{**r, "opening_hours": hours})


def item_to_record(item: MenuItem) -> dict[str, Any]:
    return {**_fields(item), "tags": list(item.tags)}


def item_from_record(r: dict[str, Any]) -> MenuItem:
    return MenuItem(**{**r, "tags": tuple(r["tags"])})


def order_to_record(order: Order) -> dict[str, Any]:
    return {
        **_fields(order),
        "lines": [
            [ln.menu_item_id, ln.name, ln.unit_price_cents, ln.quantity] for ln in order.lines
        ],
        "pickup_slot_start": order.pickup_slot_start.isoformat(),
        "status": order.status.value,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "history": [[h.status.value, h.at.isoformat(), h.actor] for h in order.history],
    }


def _instant(value: str | datetime) -> datetime:
    # PostgreSQL rows (postgres/mappers.py) carry native timestamps; the JSON file carries text.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def order_from_record(r: dict[str, Any]) -> Order:
    return Order(
        **{
            **r,
            "lines": tuple(OrderLine(i, n, p, q) for i, n, p, q in r["lines"]),
            "pickup_slot_start": _instant(r["pickup_slot_start"]),
            "status": OrderStatus(r["status"]),
            "created_at": _instant(r["created_at"]),
            "updated_at": _instant(r["updated_at"]),
            "history": tuple(
                StatusChange(OrderStatus(s), datetime.fromisoformat(at), actor)
                for s, at, actor in r["history"]
            ),
        }
    )


def dataset_to_document(data: Dataset) -> dict[str, Any]:
    return {
        "format": "pickup-data",
        "version": FORMAT_VERSION,
        "stores": [store_to_record(s) for s in data.stores],
        "menu_items": [item_to_record(i) for i in data.menu_items],
        "orders": [order_to_record(o) for o in data.orders],
        "idempotency": [[k.key, k.fingerprint, oid] for k, oid in data.idempotency],
    }


def dataset_from_document(doc: dict[str, Any]) -> Dataset:
    if doc.get("format") != "pickup-data" or doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"not a pickup-data v{FORMAT_VERSION} document")
    return Dataset(
        stores=[store_from_record(r) for r in doc["stores"]],
        menu_items=[item_from_record(r) for r in doc["menu_items"]],
        orders=[order_from_record(r) for r in doc["orders"]],
        idempotency=[(IdempotencyKey(k, f), oid) for k, f, oid in doc["idempotency"]],
    )
