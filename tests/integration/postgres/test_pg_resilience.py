"""Outages become 503s that reveal nothing; the pool heals by itself when the database returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from structlog.testing import capture_logs

from harness.tcp_proxy import TcpProxy
from service.domain.errors import ServiceUnavailableError
from service.ports import NewOrder, OrderQuery
from service.repositories.postgres import PostgresRepository
from tests.factories import make_item, make_order, make_store
from tests.integration.postgres.databases import ADMIN_DSN, HOST, PORT, admin, open_repository

pytestmark = pytest.mark.postgres

MESSAGE = "the database is unavailable; please retry shortly"


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(HOST, PORT)
    await proxy.start()
    yield proxy
    await proxy.stop()


def assert_reveals_nothing(error: ServiceUnavailableError) -> None:
    assert error.message == MESSAGE and error.details is None
    assert isinstance(error.__cause__, (asyncpg.PostgresError, asyncpg.InterfaceError, OSError))


async def backend_pids(database: str) -> set[int]:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", database.rsplit("/", 1)[1]
        )
    finally:
        await conn.close()
    return {r["pid"] for r in rows}


async def test_the_pool_recovers_by_itself_after_its_connections_are_terminated(
    database: str,
) -> None:
    async with open_repository(database, min_size=3, max_size=3) as repo:
        store = make_store()
        await repo.save_store(store)
        await asyncio.gather(*(repo.ping() for _ in range(6)))
        before = await backend_pids(database)
        name = database.rsplit("/", 1)[1]
        await admin(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )

        # Straight away, without waiting for the pool to notice: reads are repeated once.
        found = await asyncio.gather(*(repo.get_store(store.id) for _ in range(6)))
        assert found == [store] * 6
        item = make_item(store.id)
        await repo.save_menu_item(item)
        await repo.create_order(NewOrder(make_order(store, item), capacity=3))
        assert not before & await backend_pids(database)


async def test_an_outage_gives_service_unavailable_without_sql_and_then_heals(
    database: str, proxy: TcpProxy
) -> None:
    through_proxy = database.replace(f":{PORT}/", f":{proxy.port}/")
    async with open_repository(through_proxy, min_size=2) as repo:
        store = make_store()
        item = make_item(store.id)
        await repo.save_store(store)
        await repo.save_menu_item(item)

        await proxy.stop()
        calls = [
            repo.ping(),
            repo.get_store(store.id),
            repo.list_menu(store.id),
            repo.list_orders(OrderQuery(store_id=store.id, limit=5)),
            repo.create_order(NewOrder(make_order(store, item), capacity=3)),
        ]
        for call in calls:
            with pytest.raises(ServiceUnavailableError) as caught:
                await call
            assert_reveals_nothing(caught.value)

        await proxy.start()  # the same port, as a restarted server
        assert await repo.get_store(store.id) == store
        await repo.create_order(NewOrder(make_order(store, item), capacity=3))


async def test_a_query_over_the_statement_timeout_is_a_503_that_names_no_sql(
    database: str,
) -> None:
    async with open_repository(database, statement_timeout_ms=200) as repo:
        store = make_store()
        await repo.save_store(store)
        locker = await asyncpg.connect(database)
        try:
            await locker.execute("BEGIN; LOCK TABLE stores IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(ServiceUnavailableError) as caught:
                await repo.get_store(store.id)
            await locker.execute("ROLLBACK")
        finally:
            await locker.close()
        assert_reveals_nothing(caught.value)
        assert isinstance(caught.value.__cause__, asyncpg.QueryCanceledError)
        assert await repo.get_store(store.id) == store


async def test_pool_stats_count_busy_and_idle_connections(
    repo: PostgresRepository, database: str
) -> None:
    store = make_store()
    await repo.save_store(store)
    assert repo.pool_stats() == {"idle": 1, "in_use": 0}
    locker = await asyncpg.connect(database)
    try:
        await locker.execute("BEGIN; LOCK TABLE stores IN ACCESS EXCLUSIVE MODE")
        waiting = asyncio.create_task(repo.get_store(store.id))
        await asyncio.sleep(0.2)
        assert repo.pool_stats()["in_use"] == 1
        await locker.execute("ROLLBACK")
        assert await waiting == store
    finally:
        await locker.close()
    assert repo.pool_stats()["in_use"] == 0


async def test_a_failing_query_is_a_503_for_the_client_and_the_details_go_to_the_log(
    repo: PostgresRepository, database: str
) -> None:
    store = make_store()
    await repo.save_store(store)
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("ALTER TABLE order_lines RENAME TO order_lines_gone")
    finally:
        await conn.close()
    with capture_logs() as logs, pytest.raises(ServiceUnavailableError) as caught:
        await repo.list_orders(OrderQuery(store_id=store.id, limit=5))
    assert_reveals_nothing(caught.value)
    assert "order_lines" not in str(caught.value)
    [logged] = [e for e in logs if e["event"] == "database_error"]
    assert logged["operation"] == "list_orders"
    assert logged["error_type"] == "UndefinedTableError" and "order_lines" in logged["error"]
