"""Versioned, reversible migrations, safe to run from several processes at once."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from asyncio.subprocess import PIPE
from pathlib import Path

import asyncpg
import pytest

from service import dbtools
from service.domain.models import RELEASED_STATUSES
from service.repositories.postgres import sql as postgres_sql
from tests.integration.postgres.databases import scratch_database

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[3]
TABLES = {"stores", "menu_items", "orders", "order_lines", "idempotency_keys"}
INDEXES = {
    "menu_items_store_idx",
    "orders_store_status_slot_idx",
    "orders_store_slot_idx",
    "orders_live_slot_idx",
}


async def schema(dsn: str) -> tuple[set[str], set[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        tables = {
            r[0]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        indexes = {
            r[0]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
    finally:
        await conn.close()
    return tables - {"alembic_version"}, indexes - {"alembic_version_pkc"}


async def test_migrations_go_up_down_and_up_again() -> None:
    async with scratch_database(migrated=False) as dsn:
        assert (await dbtools.status(dsn)).startswith("current: none (empty database)\npending: 2")
        assert await dbtools.migrate(dsn) == ["0001", "0002"]
        tables, indexes = await schema(dsn)
        assert tables == TABLES and indexes >= INDEXES
        assert (await dbtools.status(dsn)).startswith("current: 0002 (head)\npending: 0")

        assert await dbtools.rollback(dsn, 1) == ["0002"]
        tables, indexes = await schema(dsn)
        assert tables == TABLES and not INDEXES & indexes
        status = await dbtools.status(dsn)
        assert status.startswith("current: 0001\npending: 1")
        assert re.search(r"pending\s+0002\s+Indexes for the hot paths", status)

        assert await dbtools.rollback(dsn, 1) == ["0001"]
        assert await schema(dsn) == (set(), set())
        assert await dbtools.migrate(dsn) == ["0001", "0002"]
        assert await dbtools.migrate(dsn) == []  # re-running is a no-op


async def test_migrating_to_a_revision_stops_there_and_the_rest_follows_later() -> None:
    async with scratch_database(migrated=False) as dsn:
        assert await dbtools.migrate(dsn, "0001") == ["0001"]  # the lab's naive baseline schema
        assert "pending: 1" in await dbtools.status(dsn)
        with pytest.raises(dbtools.MigrationError, match="9999"):
            await dbtools.migrate(dsn, "9999")
        assert await dbtools.migrate(dsn) == ["0002"]


async def test_rolling_back_more_than_is_applied_is_refused_and_changes_nothing() -> None:
    async with scratch_database() as dsn:
        with pytest.raises(dbtools.MigrationError, match="only 2 are applied"):
            await dbtools.rollback(dsn, 3)
        assert (await dbtools.status(dsn)).startswith("current: 0002 (head)")


MIGRATE = (
    "import asyncio, sys; from service import dbtools; "
    "print(asyncio.run(dbtools.migrate(sys.argv[1])))"
)


async def test_migrations_started_by_several_processes_at_once_apply_each_revision_once() -> None:
    async with scratch_database(migrated=False) as dsn:
        holder = await asyncpg.connect(dsn)
        try:
            # Hold the lock until all three processes are queued on it, so they really overlap.
            await holder.execute("BEGIN")
            await holder.execute(dbtools.MIGRATION_LOCK)
            processes = [
                await asyncio.create_subprocess_exec(
                    sys.executable, "-c", MIGRATE, dsn, cwd=ROOT, stdout=PIPE, stderr=PIPE
                )
                for _ in range(3)
            ]
            for _ in range(200):
                queued = await holder.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE d.datname = current_database() AND l.locktype = 'advisory' "
                    "AND NOT l.granted"
                )
                if queued == 3:
                    break
                await asyncio.sleep(0.05)
            assert queued == 3
            await holder.execute("COMMIT")
            outputs = [await p.communicate() for p in processes]
        finally:
            await holder.close()
        assert [p.returncode for p in processes] == [0, 0, 0], outputs
        printed = sorted(out.decode().strip() for out, _ in outputs)
        assert printed == ["['0001', '0002']", "[]", "[]"]
        assert (await dbtools.status(dsn)).startswith("current: 0002 (head)")


async def test_the_schema_refuses_negative_money_and_unknown_statuses(database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        store = await conn.fetchval(
            "INSERT INTO stores (id, name, address, timezone, slot_minutes, slot_capacity, "
            "lead_time_minutes, accepting_orders, opening_hours) "
            "VALUES (gen_random_uuid(), 's', 'a', 'UTC', 15, 5, 0, true, '[]') RETURNING id"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO menu_items (id, store_id, name, description, category, "
                "price_cents, currency, available) "
                "VALUES (gen_random_uuid(), $1, 'n', '', 'c', -1, 'GBP', true)",
                store,
            )
        order = (
            "INSERT INTO orders (id, store_id, customer_name, customer_phone, total_cents, "
            "currency, pickup_slot_start, status, pickup_code, order_token, created_at, "
            "updated_at, history) VALUES (gen_random_uuid(), $1, 'n', 'p', $2, 'GBP', now(), "
            "$3, '123456', 't', now(), now(), '[]')"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(order, store, 100, "lost")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(order, store, -5, "placed")
        with pytest.raises(asyncpg.ForeignKeyViolationError):  # a store that does not exist
            await conn.execute(order, uuid.uuid4(), 100, "placed")
    finally:
        await conn.close()


async def test_the_live_order_filter_matches_the_domain_and_the_partial_index(
    database: str,
) -> None:
    in_filter = set(re.findall(r"'(\w+)'", postgres_sql.LIVE))
    assert in_filter == {s.value for s in RELEASED_STATUSES}
    conn = await asyncpg.connect(database)
    try:
        definition = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'orders_live_slot_idx'"
        )
    finally:
        await conn.close()
    assert set(re.findall(r"'(\w+)'", definition)) == in_filter


async def test_a_rollback_that_would_drop_rows_is_refused_with_counts_unless_forced() -> None:
    async with scratch_database() as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO stores (id, name, address, timezone, slot_minutes, slot_capacity, "
                "lead_time_minutes, accepting_orders, opening_hours) "
                "SELECT gen_random_uuid(), 's', 'a', 'UTC', 15, 5, 0, true, '[]' "
                "FROM generate_series(1, 3)"
            )
        finally:
            await conn.close()
        # 0002 only drops indexes: no data at stake, so it goes through.
        assert await dbtools.rollback(dsn, 1) == ["0002"]
        with pytest.raises(dbtools.DataLossError) as refused:
            await dbtools.rollback(dsn, 1)
        message = str(refused.value)
        assert "table stores (3 rows)" in message
        assert "pickup data export" in message and "--force" in message
        tables, _ = await schema(dsn)
        assert tables == TABLES  # the trial downgrade was undone
        assert (await dbtools.status(dsn)).startswith("current: 0001")
        assert await dbtools.rollback(dsn, 1, force=True) == ["0001"]
        assert await schema(dsn) == (set(), set())
