"""Booking an order on PostgreSQL: one transaction that takes the slot's advisory lock (and the
phone's, before it, when a per-phone cap applies), replays an idempotent retry, lets
`domain.booking` decide on capacity and the cap, and inserts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from service.domain import booking
from service.domain.models import Order
from service.ports import NewOrder
from service.repositories.postgres import mappers as m
from service.repositories.postgres import sql as q
from service.repositories.postgres.sql import Queries

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]


async def book(conn: Connection, queries: Queries, new: NewOrder) -> tuple[Order, bool]:
    order, idempotency, phone_cap = new.order, new.idempotency, new.phone_cap
    key = None if idempotency is None else idempotency.key
    fingerprint = None if idempotency is None else idempotency.fingerprint
    phone = booking.phone_key(order.customer_phone)
    try:
        async with conn.transaction():
            if phone_cap is not None:
                # Always before the slot lock (one order of locks, no deadlock): bookings
                # by one phone at one store are serialised across every process.
                await conn.execute(q.LOCK_PHONE, order.store_id, phone)
            await conn.execute(q.LOCK_SLOT, order.store_id, order.pickup_slot_start)
            if idempotency is not None:
                earlier = await idempotent(conn, queries, idempotency.key)
                if earlier is not None:
                    return booking.replay(earlier, idempotency.fingerprint), False
            if phone_cap is not None:
                active = await conn.fetchval(
                    q.ACTIVE_FOR_PHONE,
                    order.store_id,
                    [s.value for s in booking.ACTIVE_STATUSES],
                    phone,
                )
                booking.ensure_under_cap(active=active, cap=phone_cap)
            # Under the slot lock, so no booking of this slot can land in between.
            held = await conn.fetchval(
                queries.held_in_slot, order.store_id, order.pickup_slot_start
            )
            booking.ensure_room(order.pickup_slot_start, held=held, capacity=new.capacity)
            await conn.execute(
                q.INSERT_ORDER,
                *m.order_args(order),
                *m.line_arrays(order.lines),
                key,
                fingerprint,
            )
            return order, True
    except asyncpg.UniqueViolationError as exc:
        if idempotency is None or exc.constraint_name != "idempotency_keys_pkey":
            raise
        # The same key was booked at the same moment for another slot (so not under our
        # lock). Our insert waited for that transaction to commit, so its order is visible.
        earlier = await idempotent(conn, queries, idempotency.key)
        if earlier is None:
            raise
        return booking.replay(earlier, idempotency.fingerprint), False


async def idempotent(conn: Connection, queries: Queries, key: str) -> tuple[str, Order] | None:
    row = await conn.fetchrow(queries.idempotent, key)
    if row is None:
        return None
    return row["fingerprint"], (await queries.orders_from_rows(conn, [row]))[0]
