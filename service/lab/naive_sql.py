"""QUERY_PROFILE=naive: what a straightforward first implementation of the repository runs.

`SELECT *`, plain predicates, one generic order-list statement with optional filters, and one
more query per order for its lines (N+1). Run against the schema before the hot-path index
migration (`pickup db migrate --to 0001`) it is the honest "before" of the lab's comparison;
every answer equals production's (tests/integration/postgres/test_pg_profiles.py).
"""

# Plain SQL literals; values always travel as $n parameters.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asyncpg import Record

from service.domain.models import Order
from service.ports import OrderQuery
from service.repositories.postgres import Queries
from service.repositories.postgres.mappers import line_tuples, order_from_row
from service.repositories.postgres.sql import HELD_BY_SLOT, LIVE, Connection

LINES_OF_ORDER = "SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_no"


def list_orders(query: OrderQuery) -> tuple[str, list[Any]]:
    sql = (
        "SELECT * FROM orders WHERE store_id = $1 "
        "AND ($2::text IS NULL OR status = $2::text) "
        "AND ($3::timestamptz IS NULL OR pickup_slot_start >= $3::timestamptz) "
        "AND ($4::timestamptz IS NULL OR pickup_slot_start < $4::timestamptz) "
        "AND ($5::timestamptz IS NULL OR (pickup_slot_start, id) > ($5::timestamptz, $6::uuid)) "
        "ORDER BY pickup_slot_start, id LIMIT $7"
    )
    after_at, after_id = query.after if query.after is not None else (None, None)
    status = None if query.status is None else query.status.value
    return sql, [query.store_id, status, query.start, query.end, after_at, after_id, query.limit]


async def orders_line_by_line(conn: Connection, rows: Sequence[Record]) -> list[Order]:
    """One more query per order: the N+1 a per-object loader produces."""
    return [order_from_row(r, line_tuples(await conn.fetch(LINES_OF_ORDER, r["id"]))) for r in rows]


NAIVE = Queries(
    store="SELECT * FROM stores WHERE id = $1",
    stores_first="SELECT * FROM stores ORDER BY id LIMIT $1",
    stores_after="SELECT * FROM stores WHERE id > $1 ORDER BY id LIMIT $2",
    menu="SELECT * FROM menu_items WHERE store_id = $1 ORDER BY seq",
    menu_item="SELECT * FROM menu_items WHERE id = $1",
    held_by_slot=HELD_BY_SLOT,
    held_in_slot=(
        f"SELECT count(*) FROM orders WHERE store_id = $1 AND pickup_slot_start = $2 AND {LIVE}"
    ),
    order="SELECT * FROM orders WHERE id = $1",
    order_for_update="SELECT * FROM orders WHERE id = $1 FOR UPDATE",
    idempotent=(
        "SELECT k.fingerprint, o.* FROM idempotency_keys k JOIN orders o ON o.id = k.order_id "
        "WHERE k.key = $1"
    ),
    list_orders=list_orders,
    orders_from_rows=orders_line_by_line,
)
