"""Whole datasets in and out of PostgreSQL: COPY into staging tables and merge (imports are
upserts by id), and one consistent snapshot for exports. Both run inside the caller's
transaction."""

# Every SQL string below is assembled from the constant table and column names of the mappers;
# values always travel separately.
# ruff: noqa: S608

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from asyncpg import Record

from service.ports import Dataset, IdempotencyKey
from service.repositories.postgres.mappers import (
    ITEM_COLUMNS,
    KEY_COLUMNS,
    LINE_COLUMNS,
    ORDER_COLUMNS,
    STORE_COLUMNS,
    item_args,
    item_from_row,
    line_records,
    order_args,
    order_from_row,
    store_args,
    store_from_row,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[Record]

T = TypeVar("T")


def _names(columns: Sequence[str]) -> str:
    return ", ".join(columns)


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


BULK_CHUNK = 50_000  # orders per COPY batch: memory stays bounded however large the dataset
BULK_TIMEOUT_S = 3600.0  # imports and exports lift statement_timeout; this bounds them instead
ANALYZE_AFTER_ORDERS = 10_000  # a big import leaves fresh planner statistics behind it


async def load(conn: Connection, data: Dataset, chunk_size: int) -> int:
    await conn.execute("SET LOCAL statement_timeout = 0")
    # Filling an empty orders table (a seed, the first import after a backend switch) is over
    # twice as fast without a foreign-key check and five index updates per row: set them aside,
    # load, and rebuild them from the catalog's own definitions, which checks every row in one
    # pass. Until commit this locks the order tables, which only a store with no orders affords.
    extras = [] if await conn.fetchval(HAS_ORDERS) else await conn.fetch(ORDER_TABLE_EXTRAS)
    for extra in extras:
        await conn.execute(extra["drop_sql"])
    await conn.execute(CREATE_STAGING)
    await _copy(conn, "stage_stores", ((n, *store_args(s)) for n, s in enumerate(data.stores)))
    await _copy(
        conn, "stage_menu_items", ((n, *item_args(i)) for n, i in enumerate(data.menu_items))
    )
    count = 0
    for chunk in _chunks(data.orders, chunk_size):
        await _copy(
            conn, "stage_orders", [(count + n, *order_args(o)) for n, o in enumerate(chunk)]
        )
        await _copy(conn, "stage_order_lines", [ln for o in chunk for ln in line_records(o)])
        count += len(chunk)
    await _copy(
        conn,
        "stage_idempotency_keys",
        ((n, k.key, k.fingerprint, oid) for n, (k, oid) in enumerate(data.idempotency)),
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
