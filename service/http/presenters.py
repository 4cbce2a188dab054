"""Domain objects to wire dicts (documented by the *Out models in schemas.py)."""

from __future__ import annotations

from typing import Any

from service.breaker import AsyncCircuitBreaker
from service.domain.models import WEEKDAYS, MenuItem, Order, Slot, Store
from service.usecases.recommend import Recommendation


def store(s: Store) -> dict[str, Any]:
    hours: dict[str, list[dict[str, str]]] = {}
    for i in s.opening_hours:
        hours.setdefault(WEEKDAYS[i.weekday], []).append(
            {"opens": i.opens.strftime("%H:%M"), "closes": i.closes.strftime("%H:%M")}
        )
    return {
        "id": s.id,
        "name": s.name,
        "address": s.address,
        "timezone": s.timezone,
        "slot_minutes": s.slot_minutes,
        "slot_capacity": s.slot_capacity,
        "lead_time_minutes": s.lead_time_minutes,
        "accepting_orders": s.accepting_orders,
        "opening_hours": hours,
    }


def menu_item(i: MenuItem) -> dict[str, Any]:
    return {
        "id": i.id,
        "store_id": i.store_id,
        "name": i.name,
        "description": i.description,
        "category": i.category,
        "price_cents": i.price_cents,
        "currency": i.currency,
        "available": i.available,
        "tags": list(i.tags),
    }


def slot(s: Slot) -> dict[str, Any]:
    return {
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "capacity": s.capacity,
        "remaining": s.remaining,
        "bookable": s.bookable,
    }


def order(o: Order, *, with_token: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": o.id,
        "store_id": o.store_id,
        "status": o.status.value,
        "customer": {"name": o.customer_name, "phone": o.customer_phone},
        "items": [
            {
                "menu_item_id": line.menu_item_id,
                "name": line.name,
                "unit_price_cents": line.unit_price_cents,
                "quantity": line.quantity,
                "line_total_cents": line.line_total_cents,
            }
            for line in o.lines
        ],
        "total_cents": o.total_cents,
        "currency": o.currency,
        "pickup_slot_start": o.pickup_slot_start.isoformat(),
        "pickup_code": o.pickup_code,
        "note": o.note,
        "created_at": o.created_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
        "history": [
            {"status": h.status.value, "at": h.at.isoformat(), "actor": h.actor} for h in o.history
        ],
    }
    if with_token:
        body["order_token"] = o.order_token
    return body


def recommendation(r: Recommendation) -> dict[str, Any]:
    return {
        "store_id": r.store_id,
        "items": [
            {"menu_item_id": i.id, "name": i.name, "price_cents": i.price_cents, "reason": reason}
            for i, reason in r.items
        ],
        "message": r.message,
        "source": r.source,
    }


def breaker(b: AsyncCircuitBreaker) -> dict[str, Any]:
    status = b.status()
    return {
        "name": status.name,
        "state": status.state,
        "fail_counter": status.fail_counter,
        "fail_max": b.fail_max,
        "opened_at": status.opened_at.isoformat() if status.opened_at else None,
        "reset_timeout_s": status.reset_timeout,
        "last_error_class": status.last_error_class,
    }


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
