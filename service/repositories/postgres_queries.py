"""SQL for the PostgreSQL backend, and the conversions between its rows and domain objects.

Two query profiles return the same results. `OPTIMIZED` is what production runs: named columns,
order lines aggregated into the order row (one round trip), filters the composite indexes can
serve. `NAIVE` exists only so the lab can measure what those choices are worth: `SELECT *`, one
extra query per order for its lines (N+1), and filters that wrap indexed columns in casts and
functions.
"""

# Every SQL string below is assembled from the constant table and column names in this module;
# values always travel separately, as $n parameters.
# ruff: noqa: S608

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, TypeVar

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
from service.repositories import records as rec
from service.repositories.base import Dataset, IdempotencyKey

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[Record]

T = TypeVar("T")

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

# Must equal the partial index predicate of orders_live_slot_idx (migration 0002) so the planner
# can use it, and RELEASED_STATUSES in the domain (a test checks both).
LIVE = "status NOT IN ('cancelled', 'rejected')"


def _names(columns: Sequence[str], alias: str = "") -> str:
    return ", ".join(f"{alias}{c}" for c in columns)


def _upsert(table: str, columns: Sequence[str]) -> str:
    values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {table} ({_names(columns)}) VALUES ({values}) "
        f"ON CONFLICT (id) DO UPDATE SET {changes}"
    )


SAVE_STORE = _upsert("stores", STORE_COLUMNS)
SAVE_MENU_ITEM = _upsert("menu_items", ITEM_COLUMNS)
IS_EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM stores)"
PING = "SELECT 1"
HAS_SCHEMA = "SELECT to_regclass('orders') IS NOT NULL"

# Serialises bookings of one slot across every connection and process until the transaction
# ends. The epoch (not the text form of the timestamp) keeps the key independent of TimeZone.
LOCK_SLOT = (
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'pickup:slot:' || $1::uuid::text || '@' || extract(epoch FROM $2::timestamptz)::text, 0))"
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

# The whole booking in one statement: it inserts only while the slot has room, and the order,
# its lines and its idempotency key go in together. LOCK_SLOT runs first, in its own statement,
# so that this statement's snapshot already sees every booking committed before the lock.
_INSERT_ORDER = """
WITH new_order AS (
    INSERT INTO orders ({columns})
    SELECT $1::uuid, $2::uuid, $3::text, $4::text, $5::int, $6::text, $7::timestamptz, $8::text,
           $9::text, $10::text, $11::text, $12::timestamptz, $13::timestamptz, $14::jsonb
    WHERE (SELECT count(*) FROM orders WHERE {same_slot} AND {live}) < $15
    RETURNING id
), new_lines AS (
    INSERT INTO order_lines (order_id, line_no, menu_item_id, name, unit_price_cents, quantity)
    SELECT new_order.id, line.no, line.menu_item_id, line.name, line.unit_price_cents,
           line.quantity
    FROM new_order, unnest($16::uuid[], $17::text[], $18::int[], $19::int[]) WITH ORDINALITY
         AS line(menu_item_id, name, unit_price_cents, quantity, no)
), new_key AS (
    INSERT INTO idempotency_keys (key, fingerprint, order_id)
    SELECT $20::text, $21::text, new_order.id FROM new_order WHERE $20::text IS NOT NULL
)
SELECT count(*) FROM new_order
"""

# Optimized reads: the lines travel inside the order row, in line order.
_ORDER_SELECT = (
    f"SELECT {_names(ORDER_COLUMNS, 'o.')}, "
    "ARRAY(SELECT (l.menu_item_id, l.name, l.unit_price_cents, l.quantity) "
    "FROM order_lines l WHERE l.order_id = o.id ORDER BY l.line_no) AS lines "
    "FROM orders o"
)

ListOrders = Callable[
    [str, OrderStatus | None, datetime | None, datetime | None, tuple[datetime, str] | None, int],
    tuple[str, list[Any]],
]


def _list_orders_optimized(
    store_id: str,
    status: OrderStatus | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    # Only the filters in use appear, so each combination gets its own prepared plan that
    # matches an index, instead of one generic plan full of "$n IS NULL OR ..." branches.
    args: list[Any] = [store_id]
    where = ["o.store_id = $1"]
    if status is not None:
        args.append(status.value)
        where.append(f"o.status = ${len(args)}")
    if start is not None:
        args.append(start)
        where.append(f"o.pickup_slot_start >= ${len(args)}")
    if end is not None:
        args.append(end)
        where.append(f"o.pickup_slot_start < ${len(args)}")
    if after is not None:
        args += [after[0], after[1]]
        where.append(f"(o.pickup_slot_start, o.id) > (${len(args) - 1}, ${len(args)}::uuid)")
    args.append(limit)
    sql = (
        f"{_ORDER_SELECT} WHERE {' AND '.join(where)} "
        f"ORDER BY o.pickup_slot_start, o.id LIMIT ${len(args)}"
    )
    return sql, args


# Filters on expressions of the indexed columns: right answers, but no index can serve them.
_NAIVE_EPOCH = "extract(epoch FROM pickup_slot_start)"
_NAIVE_LIVE = "lower(status) NOT IN ('cancelled', 'rejected')"


def _list_orders_naive(
    store_id: str,
    status: OrderStatus | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    sql = (
        "SELECT * FROM orders WHERE store_id::text = $1::text "
        "AND ($2::text IS NULL OR lower(status) = $2::text) "
        f"AND ($3::timestamptz IS NULL OR {_NAIVE_EPOCH} >= extract(epoch FROM $3::timestamptz)) "
        f"AND ($4::timestamptz IS NULL OR {_NAIVE_EPOCH} < extract(epoch FROM $4::timestamptz)) "
        f"AND ($5::timestamptz IS NULL OR ({_NAIVE_EPOCH}, id) > "
        "(extract(epoch FROM $5::timestamptz), $6::uuid)) "
        "ORDER BY pickup_slot_start, id LIMIT $7"
    )
    after_at, after_id = after if after is not None else (None, None)
    status_value = None if status is None else status.value
    return sql, [store_id, status_value, start, end, after_at, after_id, limit]


@dataclass(frozen=True, slots=True)
class Queries:
    store: str
    stores_first: str
    stores_after: str
    menu: str
    menu_item: str
    held_by_slot: str
    order: str
    order_for_update: str
    idempotent: str
    insert_order: str
    list_orders: ListOrders
    # None: lines arrive in the order row; otherwise the query run once per order (N+1).
    lines_of_order: str | None


OPTIMIZED = Queries(
    store=f"SELECT {_names(STORE_COLUMNS)} FROM stores WHERE id = $1",
    stores_first=f"SELECT {_names(STORE_COLUMNS)} FROM stores ORDER BY id LIMIT $1",
    stores_after=f"SELECT {_names(STORE_COLUMNS)} FROM stores WHERE id > $1 ORDER BY id LIMIT $2",
    menu=f"SELECT {_names(ITEM_COLUMNS)} FROM menu_items WHERE store_id = $1 ORDER BY seq",
    menu_item=f"SELECT {_names(ITEM_COLUMNS)} FROM menu_items WHERE id = $1",
    held_by_slot=(
        "SELECT pickup_slot_start, count(*) AS held FROM orders WHERE store_id = $1 "
        f"AND pickup_slot_start >= $2 AND pickup_slot_start < $3 AND {LIVE} "
        "GROUP BY pickup_slot_start"
    ),
    order=f"{_ORDER_SELECT} WHERE o.id = $1",
    order_for_update=f"{_ORDER_SELECT} WHERE o.id = $1 FOR UPDATE OF o",
    idempotent=(
        f"SELECT k.fingerprint, {_ORDER_SELECT.removeprefix('SELECT ')} "
        "JOIN idempotency_keys k ON k.order_id = o.id WHERE k.key = $1"
    ),
    insert_order=_INSERT_ORDER.format(
        columns=_names(ORDER_COLUMNS),
        same_slot="store_id = $2::uuid AND pickup_slot_start = $7::timestamptz",
        live=LIVE,
    ),
    list_orders=_list_orders_optimized,
    lines_of_order=None,
)

NAIVE = Queries(
    store="SELECT * FROM stores WHERE id = $1",
    stores_first="SELECT * FROM stores ORDER BY id LIMIT $1",
    stores_after="SELECT * FROM stores WHERE id > $1 ORDER BY id LIMIT $2",
    menu="SELECT * FROM menu_items WHERE store_id::text = $1::text ORDER BY seq",
    menu_item="SELECT * FROM menu_items WHERE id = $1",
    held_by_slot=(
        "SELECT pickup_slot_start, count(*) AS held FROM orders WHERE store_id::text = $1::text "
        f"AND {_NAIVE_EPOCH} >= extract(epoch FROM $2::timestamptz) "
        f"AND {_NAIVE_EPOCH} < extract(epoch FROM $3::timestamptz) "
        f"AND {_NAIVE_LIVE} GROUP BY pickup_slot_start"
    ),
    order="SELECT * FROM orders WHERE id = $1",
    order_for_update="SELECT * FROM orders WHERE id = $1 FOR UPDATE",
    idempotent=(
        "SELECT k.fingerprint, o.* FROM idempotency_keys k JOIN orders o ON o.id = k.order_id "
        "WHERE k.key = $1"
    ),
    insert_order=_INSERT_ORDER.format(
        columns=_names(ORDER_COLUMNS),
        same_slot=(
            "store_id::text = $2::uuid::text "
            f"AND {_NAIVE_EPOCH} = extract(epoch FROM $7::timestamptz)"
        ),
        live=_NAIVE_LIVE,
    ),
    list_orders=_list_orders_naive,
    lines_of_order="SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_no",
)

PROFILES = {"optimized": OPTIMIZED, "naive": NAIVE}


# -- bulk load and export ----------------------------------------------------------------------

# Imports are upserts by id, so rows are first COPYed into staging tables (fast, no checks) and
# then merged. `n` keeps the dataset's order, which becomes the rows' `seq` (insertion order).
STAGE_COLUMNS = {
    "stage_stores": ("n", *STORE_COLUMNS),
    "stage_menu_items": ("n", *ITEM_COLUMNS),
    "stage_orders": ("n", *ORDER_COLUMNS),
    "stage_order_lines": LINE_COLUMNS,
    "stage_idempotency_keys": ("n", *KEY_COLUMNS),
}
CREATE_STAGING = ";\n".join(
    f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
    f"SELECT {'0::bigint AS n, ' if columns[0] == 'n' else ''}"
    f"{_names([c for c in columns if c != 'n'])} FROM {stage.removeprefix('stage_')} WITH NO DATA"
    for stage, columns in STAGE_COLUMNS.items()
)


def _merge(table: str, columns: Sequence[str], key: str = "id") -> str:
    changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    return (
        f"INSERT INTO {table} ({_names(columns)}) "
        f"SELECT {_names(columns)} FROM stage_{table} ORDER BY n "
        f"ON CONFLICT ({key}) DO UPDATE SET {changes}"
    )


# Parents before children, for the foreign keys; an imported order's lines replace its old ones.
MERGE_STAGED = ";\n".join(
    [
        _merge("stores", STORE_COLUMNS),
        _merge("menu_items", ITEM_COLUMNS),
        _merge("orders", ORDER_COLUMNS),
        "DELETE FROM order_lines l USING stage_orders s WHERE l.order_id = s.id",
        f"INSERT INTO order_lines ({_names(LINE_COLUMNS)}) "
        f"SELECT {_names(LINE_COLUMNS)} FROM stage_order_lines",
        _merge("idempotency_keys", KEY_COLUMNS, key="key"),
    ]
)
ANALYZE = "ANALYZE stores, menu_items, orders, order_lines, idempotency_keys"
HAS_ORDERS = "SELECT EXISTS (SELECT 1 FROM orders)"
# The order tables' secondary indexes and foreign keys, each as the SQL that drops it and the
# SQL that recreates it exactly as the migrations left it.
ORDER_TABLE_EXTRAS = """
SELECT format('DROP INDEX %s', i.indexrelid::regclass) AS drop_sql,
       pg_get_indexdef(i.indexrelid) AS create_sql
FROM pg_index i
WHERE i.indrelid IN ('orders'::regclass, 'order_lines'::regclass) AND NOT i.indisunique
UNION ALL
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid))
FROM pg_constraint c
WHERE c.contype = 'f' AND c.conrelid IN ('orders'::regclass, 'order_lines'::regclass)
"""

EXPORT_STORES = f"SELECT {_names(STORE_COLUMNS)} FROM stores ORDER BY seq"
EXPORT_MENU_ITEMS = f"SELECT {_names(ITEM_COLUMNS)} FROM menu_items ORDER BY seq"
EXPORT_ORDERS = f"SELECT {_names(ORDER_COLUMNS)} FROM orders ORDER BY seq"
EXPORT_LINES = (
    "SELECT order_id, menu_item_id, name, unit_price_cents, quantity "
    "FROM order_lines ORDER BY order_id, line_no"
)
EXPORT_KEYS = (
    "SELECT k.key, k.fingerprint, k.order_id FROM idempotency_keys k "
    "JOIN orders o ON o.id = k.order_id ORDER BY o.seq, k.key"
)


# -- domain -> query arguments -----------------------------------------------------------------


def store_args(store: Store) -> tuple[Any, ...]:
    hours = rec.store_to_record(store)["opening_hours"]
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


# -- whole-dataset units of work (run inside the caller's transaction) -------------------------

BULK_CHUNK = 50_000  # orders per COPY batch: memory stays bounded however large the dataset
BULK_TIMEOUT_S = 3600.0  # imports and exports lift statement_timeout; this bounds them instead
ANALYZE_AFTER_ORDERS = 10_000  # a big import leaves fresh planner statistics behind it


async def load(
    conn: Connection,
    stores: Iterable[Store],
    menu_items: Iterable[MenuItem],
    orders: Iterable[Order],
    idempotency: Iterable[tuple[IdempotencyKey, str]],
    chunk_size: int,
) -> int:
    await conn.execute("SET LOCAL statement_timeout = 0")
    # Filling an empty orders table (a seed, the first import after a backend switch) is over
    # twice as fast without a foreign-key check and five index updates per row: set them aside,
    # load, and rebuild them from the catalog's own definitions, which checks every row in one
    # pass. Until commit this locks the order tables, which only a store with no orders affords.
    extras = [] if await conn.fetchval(HAS_ORDERS) else await conn.fetch(ORDER_TABLE_EXTRAS)
    for extra in extras:
        await conn.execute(extra["drop_sql"])
    await conn.execute(CREATE_STAGING)
    await _copy(conn, "stage_stores", ((n, *store_args(s)) for n, s in enumerate(stores)))
    await _copy(conn, "stage_menu_items", ((n, *item_args(i)) for n, i in enumerate(menu_items)))
    count = 0
    for chunk in _chunks(orders, chunk_size):
        await _copy(
            conn, "stage_orders", [(count + n, *order_args(o)) for n, o in enumerate(chunk)]
        )
        await _copy(conn, "stage_order_lines", [ln for o in chunk for ln in line_records(o)])
        count += len(chunk)
    await _copy(
        conn,
        "stage_idempotency_keys",
        ((n, k.key, k.fingerprint, oid) for n, (k, oid) in enumerate(idempotency)),
    )
    await conn.execute(MERGE_STAGED, timeout=BULK_TIMEOUT_S)
    for extra in extras:
        await conn.execute(extra["create_sql"], timeout=BULK_TIMEOUT_S)
    if count >= ANALYZE_AFTER_ORDERS:
        await conn.execute(ANALYZE, timeout=BULK_TIMEOUT_S)
    return count


async def export(conn: Connection) -> Dataset:
    # One snapshot, so the export is consistent even while orders keep arriving.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL statement_timeout = 0")

        async def fetch(sql: str) -> list[Record]:
            return await conn.fetch(sql, timeout=BULK_TIMEOUT_S)

        stores = [store_from_row(r) for r in await fetch(EXPORT_STORES)]
        items = [item_from_row(r) for r in await fetch(EXPORT_MENU_ITEMS)]
        lines: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        for r in await fetch(EXPORT_LINES):
            lines[r["order_id"]].append(tuple(r)[1:])
        orders = [order_from_row(r, lines.get(r["id"], ())) for r in await fetch(EXPORT_ORDERS)]
        keys = [
            (IdempotencyKey(r["key"], r["fingerprint"]), str(r["order_id"]))
            for r in await fetch(EXPORT_KEYS)
        ]
    return Dataset(stores=stores, menu_items=items, orders=orders, idempotency=keys)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


async def _copy(conn: Connection, stage: str, records: Iterable[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        stage, records=records, columns=STAGE_COLUMNS[stage], timeout=BULK_TIMEOUT_S
    )
