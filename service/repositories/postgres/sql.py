"""Production SQL of the PostgreSQL backend: named columns, order lines aggregated into the
order row (one round trip per order read), and filters the composite indexes of migration 0002
serve. The lab's naive baseline is a second `Queries` set in service/lab, chosen by the
bootstrap; nothing here knows about it.
"""

# Every SQL string below is assembled from the constant table and column names in this module;
# values always travel separately, as $n parameters.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncpg import Record

from service.domain.models import Order
from service.ports import OrderQuery
from service.repositories.postgres import mappers

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[Record]
else:
    Connection = Any

STORE_COLUMNS = mappers.STORE_COLUMNS
ITEM_COLUMNS = mappers.ITEM_COLUMNS
ORDER_COLUMNS = mappers.ORDER_COLUMNS
LINE_COLUMNS = mappers.LINE_COLUMNS
KEY_COLUMNS = mappers.KEY_COLUMNS

# Must equal the partial index predicate of orders_live_slot_idx (migration 0002) so the planner
# can use it, and RELEASED_STATUSES in the domain (a test checks both).
LIVE = "status NOT IN ('cancelled', 'rejected')"

# Live orders per slot start in [$2, $3) at store $1: the same statement in every profile.
HELD_BY_SLOT = (
    "SELECT pickup_slot_start, count(*) AS held FROM orders WHERE store_id = $1 "
    f"AND pickup_slot_start >= $2 AND pickup_slot_start < $3 AND {LIVE} "
    "GROUP BY pickup_slot_start"
)


def names(columns: Sequence[str], alias: str = "") -> str:
    return ", ".join(f"{alias}{c}" for c in columns)


def _upsert(table: str, columns: Sequence[str]) -> str:
    values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {table} ({names(columns)}) VALUES ({values}) "
        f"ON CONFLICT (id) DO UPDATE SET {changes}"
    )


SAVE_STORE = _upsert("stores", STORE_COLUMNS)
SAVE_MENU_ITEM = _upsert("menu_items", ITEM_COLUMNS)
# Read-modify-write of a store or menu item: the row stays locked until the transaction ends, so
# two staff edits of one row take turns and each applies its fields to the other's result.
STORE_FOR_UPDATE = f"SELECT {names(STORE_COLUMNS)} FROM stores WHERE id = $1 FOR UPDATE"
MENU_ITEM_FOR_UPDATE = f"SELECT {names(ITEM_COLUMNS)} FROM menu_items WHERE id = $1 FOR UPDATE"
IS_EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM stores)"
PING = "SELECT 1"
HAS_SCHEMA = "SELECT to_regclass('orders') IS NOT NULL"

# Serialises bookings of one slot across every connection and process until the transaction
# ends. The epoch (not the text form of the timestamp) keeps the key independent of TimeZone.
LOCK_SLOT = (
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'pickup:slot:' || $1::uuid::text || '@' || extract(epoch FROM $2::timestamptz)::text, 0))"
)
LOCK_PHONE = (
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'pickup:phone:' || $1::uuid::text || '@' || $2::text, 0))"
)
# A store's active orders are few (the status index finds them); the phone is compared by its
# digits, as booking.phone_key spells it.
ACTIVE_FOR_PHONE = (
    "SELECT count(*) FROM orders WHERE store_id = $1::uuid AND status = ANY($2::text[]) "
    "AND regexp_replace(customer_phone, '[^0-9]', '', 'g') = $3::text"
)
UPDATE_ORDER = (
    "UPDATE orders SET "
    + ", ".join(f"{c} = ${n}" for n, c in enumerate(ORDER_COLUMNS[1:], start=2))
    + " WHERE id = $1"
)
DELETE_LINES = "DELETE FROM order_lines WHERE order_id = $1"
INSERT_LINES = (
    "INSERT INTO order_lines (order_id, line_no, menu_item_id, name, unit_price_cents, quantity) "
    "SELECT $1, line.no, line.menu_item_id, line.name, line.unit_price_cents, line.quantity "
    "FROM unnest($2::uuid[], $3::text[], $4::int[], $5::int[]) WITH ORDINALITY "
    "AS line(menu_item_id, name, unit_price_cents, quantity, no)"
)

# The order, its lines and its idempotency key in one statement. It runs under LOCK_SLOT, after
# the capacity decision (domain.booking.ensure_room) on the count HELD_IN_SLOT returned.
INSERT_ORDER = f"""
WITH new_order AS (
    INSERT INTO orders ({names(ORDER_COLUMNS)})
    VALUES ($1::uuid, $2::uuid, $3::text, $4::text, $5::int, $6::text, $7::timestamptz, $8::text,
            $9::text, $10::text, $11::text, $12::timestamptz, $13::timestamptz, $14::jsonb)
    RETURNING id
), new_lines AS (
    INSERT INTO order_lines (order_id, line_no, menu_item_id, name, unit_price_cents, quantity)
    SELECT new_order.id, line.no, line.menu_item_id, line.name, line.unit_price_cents,
           line.quantity
    FROM new_order, unnest($15::uuid[], $16::text[], $17::int[], $18::int[]) WITH ORDINALITY
         AS line(menu_item_id, name, unit_price_cents, quantity, no)
)
INSERT INTO idempotency_keys (key, fingerprint, order_id)
SELECT $19::text, $20::text, new_order.id FROM new_order WHERE $19::text IS NOT NULL
"""

# Optimized reads: the lines travel inside the order row, in line order.
ORDER_SELECT = (
    f"SELECT {names(ORDER_COLUMNS, 'o.')}, "
    "ARRAY(SELECT (l.menu_item_id, l.name, l.unit_price_cents, l.quantity) "
    "FROM order_lines l WHERE l.order_id = o.id ORDER BY l.line_no) AS lines "
    "FROM orders o"
)

ListOrders = Callable[[OrderQuery], tuple[str, list[Any]]]
# Turns order rows into orders; a profile may fetch more (each order's lines) on `conn`.
OrdersFromRows = Callable[[Connection, Sequence[Record]], Awaitable[list[Order]]]


def list_orders(query: OrderQuery) -> tuple[str, list[Any]]:
    # Only the filters in use appear, so each combination gets its own prepared plan that
    # matches an index, instead of one generic plan full of "$n IS NULL OR ..." branches.
    args: list[Any] = [query.store_id]
    where = ["o.store_id = $1"]
    if query.status is not None:
        args.append(query.status.value)
        where.append(f"o.status = ${len(args)}")
    if query.start is not None:
        args.append(query.start)
        where.append(f"o.pickup_slot_start >= ${len(args)}")
    if query.end is not None:
        args.append(query.end)
        where.append(f"o.pickup_slot_start < ${len(args)}")
    if query.after is not None:
        args.extend(query.after)
        where.append(f"(o.pickup_slot_start, o.id) > (${len(args) - 1}, ${len(args)}::uuid)")
    args.append(query.limit)
    sql = (
        f"{ORDER_SELECT} WHERE {' AND '.join(where)} "
        f"ORDER BY o.pickup_slot_start, o.id LIMIT ${len(args)}"
    )
    return sql, args


async def orders_with_their_lines(conn: Connection, rows: Sequence[Record]) -> list[Order]:
    return [mappers.order_from_row(r, r["lines"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Queries:
    """One query profile: the reads and the capacity count that a profile may write its own way."""

    store: str
    stores_first: str
    stores_after: str
    menu: str
    menu_item: str
    held_by_slot: str
    held_in_slot: str  # ($1 store, $2 slot start): live orders in that one slot
    order: str
    order_for_update: str
    idempotent: str
    list_orders: ListOrders
    orders_from_rows: OrdersFromRows


OPTIMIZED = Queries(
    store=f"SELECT {names(STORE_COLUMNS)} FROM stores WHERE id = $1",
    stores_first=f"SELECT {names(STORE_COLUMNS)} FROM stores ORDER BY id LIMIT $1",
    stores_after=f"SELECT {names(STORE_COLUMNS)} FROM stores WHERE id > $1 ORDER BY id LIMIT $2",
    menu=f"SELECT {names(ITEM_COLUMNS)} FROM menu_items WHERE store_id = $1 ORDER BY seq",
    menu_item=f"SELECT {names(ITEM_COLUMNS)} FROM menu_items WHERE id = $1",
    held_by_slot=HELD_BY_SLOT,
    held_in_slot=(
        "SELECT count(*) FROM orders "
        f"WHERE store_id = $1::uuid AND pickup_slot_start = $2::timestamptz AND {LIVE}"
    ),
    order=f"{ORDER_SELECT} WHERE o.id = $1",
    order_for_update=f"{ORDER_SELECT} WHERE o.id = $1 FOR UPDATE OF o",
    idempotent=(
        f"SELECT k.fingerprint, {ORDER_SELECT.removeprefix('SELECT ')} "
        "JOIN idempotency_keys k ON k.order_id = o.id WHERE k.key = $1"
    ),
    list_orders=list_orders,
    orders_from_rows=orders_with_their_lines,
)
