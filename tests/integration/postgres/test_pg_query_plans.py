"""Every hot query is served by its index on realistic data; the naive baseline's are not: it
runs on the schema before the hot-path indexes (migration 0001), as a first implementation did.

The data is the demo generator's (skewed towards the first stores, as real chains are), large
enough that the planner prefers an index only when the index really helps. Planner statistics
come from ANALYZE; nothing here switches plan types off.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from service.domain.models import OrderStatus
from service.lab.naive_sql import NAIVE
from service.ports import IdempotencyKey, OrderQuery
from service.repositories.postgres import PostgresRepository
from service.repositories.postgres import sql as q
from service.usecases.seed import EPOCH, demo_dataset
from tests.integration.postgres.databases import open_repository, scratch_database

pytestmark = pytest.mark.postgres


def plan_nodes(plan: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(node type, table, index) of every node in an EXPLAIN (FORMAT JSON) plan."""
    nodes = [(plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"))]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


async def explain(
    conn: asyncpg.Connection, sql: str, *args: Any
) -> list[tuple[str, str | None, str | None]]:
    document = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return plan_nodes(json.loads(document)[0]["Plan"])


async def test_hot_queries_use_their_indexes_and_naive_ones_scan(
    repo: PostgresRepository, database: str
) -> None:
    data = demo_dataset(stores=50, items_per_store=40, orders=20_000, seed=3)
    keys = [(IdempotencyKey(f"key-{n}", "body"), o.id) for n, o in enumerate(data.orders[::4])]
    data = replace(data, idempotency=keys)
    await repo.import_dataset(data)  # analyzes the tables: it loads more than 10k orders
    busiest = data.stores[0].id
    order = data.orders[0]
    week = (EPOCH + timedelta(days=100), EPOCH + timedelta(days=107))
    after = (week[0] + timedelta(days=1), order.id)
    # Staff filter by statuses that hold a minority of a store's orders (here: cancelled).
    cancelled = OrderStatus.CANCELLED
    lo = q.OPTIMIZED.list_orders
    cancelled_that_week = OrderQuery(
        store_id=busiest, status=cancelled, start=week[0], end=week[1], limit=20
    )
    cases: dict[str, tuple[str, list[Any], set[str]]] = {
        "menu by store": (q.OPTIMIZED.menu, [busiest], {"menu_items_store_idx"}),
        "orders by store, status and slot": (
            *lo(cancelled_that_week),
            {"orders_store_status_slot_idx"},
        ),
        "next page of them": (
            *lo(replace(cancelled_that_week, start=None, end=None, after=after)),
            {"orders_store_status_slot_idx"},
        ),
        "orders by store and slot": (
            *lo(replace(cancelled_that_week, status=None)),
            {"orders_store_slot_idx"},
        ),
        "live orders per slot": (
            q.OPTIMIZED.held_by_slot,
            [busiest, week[0], week[0] + timedelta(days=3)],
            {"orders_live_slot_idx"},
        ),
        "capacity check of a booking": (
            q.OPTIMIZED.held_in_slot,
            [order.store_id, order.pickup_slot_start],
            {"orders_live_slot_idx"},
        ),
        "order by id with its lines": (
            q.OPTIMIZED.order,
            [order.id],
            {"orders_pkey", "order_lines_pkey"},
        ),
        "order by idempotency key": (
            q.OPTIMIZED.idempotent,
            ["key-7"],
            {"idempotency_keys_pkey", "orders_pkey", "order_lines_pkey"},
        ),
    }
    conn = await asyncpg.connect(database)
    try:
        problems = []
        for name, (sql, args, indexes) in cases.items():
            nodes = await explain(conn, sql, *args)
            used = {index for _, _, index in nodes if index}
            scanned = {str(table) for node, table, _ in nodes if node == "Seq Scan"}
            if not indexes <= used or scanned:
                problems.append(f"{name}: indexes {sorted(used)}, seq scans {sorted(scanned)}")
        assert problems == []
    finally:
        await conn.close()

    # The naive baseline: the same data on the schema before migration 0002.
    async with scratch_database(to="0001") as naive_db:
        async with open_repository(naive_db, queries=NAIVE) as naive:
            await naive.import_dataset(data)
        conn = await asyncpg.connect(naive_db)
        try:
            for sql, args in [
                (NAIVE.menu, [busiest]),
                NAIVE.list_orders(cancelled_that_week),
                (NAIVE.held_by_slot, [busiest, week[0], week[0] + timedelta(days=3)]),
                (NAIVE.held_in_slot, cases["capacity check of a booking"][1]),
            ]:
                nodes = await explain(conn, sql, *args)
                assert any(node == "Seq Scan" for node, _, _ in nodes), nodes
        finally:
            await conn.close()
