from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.domain import booking, lifecycle, money, slots
from service.domain.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from service.domain.models import Order, OrderLine, OrderStatus, StatusChange
from service.ports import Booking, IdempotencyKey, NewOrder, OrderBook, OrderQuery
from service.usecases import pagination
from service.usecases.access import (
    Principal,
    require_credentials,
    require_order_access,
    require_staff,
)
from service.usecases.stores import get_store

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    store_id: str
    pickup_slot_start: datetime
    customer_name: str
    customer_phone: str
    items: Sequence[tuple[str, int]]  # (menu item id, quantity)
    note: str | None
    fingerprint: str  # canonical hash of the request body, for idempotent retries


def fingerprint(canonical_body: bytes) -> str:
    return hashlib.sha256(canonical_body).hexdigest()


async def place_order(
    repo: Booking,
    request: OrderRequest,
    *,
    now: datetime,
    idempotency_key: str | None,
    phone_cap: int | None = None,
) -> tuple[Order, bool]:
    """Returns (order, created); created is False when an idempotent retry replays the first."""
    idempotency = IdempotencyKey(idempotency_key, request.fingerprint) if idempotency_key else None
    if idempotency is not None:
        # A retry replays the first answer even if the slot has since filled or passed.
        earlier = await repo.get_idempotent(idempotency.key)
        if earlier is not None:
            return booking.replay(earlier, idempotency.fingerprint), False
    store = await get_store(repo, request.store_id)
    menu = {item.id: item for item in await repo.list_menu(store.id)}
    problems = []
    lines = []
    currencies = []
    for index, (item_id, quantity) in enumerate(request.items):
        item = menu.get(item_id)
        if item is None:
            problems.append(
                {"field": f"items.{index}.menu_item_id", "message": "not on this store's menu"}
            )
        elif not item.available:
            problems.append(
                {"field": f"items.{index}.menu_item_id", "message": "currently unavailable"}
            )
        else:
            lines.append(OrderLine(item.id, item.name, item.price_cents, quantity))
            currencies.append(item.currency)
    if problems:
        raise InvalidInputError("some items cannot be ordered", details=problems)
    total = money.order_total(lines)
    currency = money.single_currency(currencies)
    # Whether the slot has room is decided atomically by the repository (booking.ensure_room).
    slot_start = slots.check_bookable(store, request.pickup_slot_start, now=now)
    order = Order(
        id=str(uuid.uuid4()),
        store_id=store.id,
        customer_name=request.customer_name,
        customer_phone=request.customer_phone,
        lines=tuple(lines),
        total_cents=total,
        currency=currency,
        pickup_slot_start=slot_start,
        status=OrderStatus.PLACED,
        pickup_code=f"{secrets.randbelow(1_000_000):06d}",
        order_token=secrets.token_urlsafe(24),
        note=request.note,
        created_at=now,
        updated_at=now,
        history=(StatusChange(OrderStatus.PLACED, now, "customer"),),
    )
    return await repo.create_order(
        NewOrder(order, capacity=store.slot_capacity, idempotency=idempotency, phone_cap=phone_cap)
    )


async def get_order(repo: OrderBook, principal: Principal, order_id: str) -> Order:
    order = await _order_for(repo, principal, order_id)
    require_order_access(principal, order)
    return order


async def cancel_order(
    repo: OrderBook, principal: Principal, order_id: str, *, now: datetime
) -> Order:
    order = await _order_for(repo, principal, order_id)
    actor = require_order_access(principal, order)
    return await repo.update_order(
        order_id, lambda o: lifecycle.transition(o, OrderStatus.CANCELLED, actor=actor, at=now)
    )


async def set_status(
    repo: OrderBook,
    principal: Principal,
    order_id: str,
    target: OrderStatus,
    *,
    now: datetime,
) -> Order:
    order = await _staff_order(repo, principal, order_id)
    return await repo.update_order(
        order.id, lambda o: lifecycle.transition(o, target, actor="staff", at=now)
    )


async def pick_up_order(
    repo: OrderBook, principal: Principal, order_id: str, code: str, *, now: datetime
) -> Order:
    order = await _staff_order(repo, principal, order_id)
    return await repo.update_order(order.id, lambda o: lifecycle.pick_up(o, code, at=now))


async def list_store_orders(
    repo: Booking,
    principal: Principal,
    store_id: str,
    *,
    status: OrderStatus | None,
    day: date | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Order], str | None]:
    require_staff(principal, store_id)
    store = await get_store(repo, store_id)
    start = end = None
    if day is not None:
        tz = ZoneInfo(store.timezone)
        start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    after = pagination.decode_order_cursor(cursor) if cursor else None
    query = OrderQuery(
        store_id=store_id, limit=limit + 1, status=status, start=start, end=end, after=after
    )
    found = await repo.list_orders(query)
    page = found[:limit]
    next_cursor = (
        pagination.encode(page[-1].pickup_slot_start.isoformat(), page[-1].id)
        if len(found) > limit
        else None
    )
    return page, next_cursor


async def _order_for(repo: OrderBook, principal: Principal, order_id: str) -> Order:
    """The order a principal asks for. Credentials come first: without any, nothing is looked
    up; a customer's token for an id that names no order gets the answer a wrong token gets,
    so neither learns whether the order exists."""
    require_credentials(principal, order_token=True)
    order = await repo.get_order(order_id)
    if order is None:
        if principal.kind == "anonymous":
            raise PermissionDeniedError("this token does not belong to this order")
        raise NotFoundError("no order with this id", details={"order_id": order_id})
    return order


async def _existing_order(repo: OrderBook, order_id: str) -> Order:
    order = await repo.get_order(order_id)
    if order is None:
        raise NotFoundError("no order with this id", details={"order_id": order_id})
    return order


async def _staff_order(repo: OrderBook, principal: Principal, order_id: str) -> Order:
    require_credentials(principal, order_token=False)  # before the lookup
    order = await _existing_order(repo, order_id)
    require_staff(principal, order.store_id)
    return order
