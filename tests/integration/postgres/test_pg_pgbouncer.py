"""Neon's pooled endpoint, reproduced with a real PgBouncer in transaction mode (harness/
pgbouncer.py) in front of the test PostgreSQL: start-up, migrations, a burst of concurrent
work, and a statement timeout that holds in every transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from harness.pgbouncer import PgBouncer, pgbouncer_missing
from service import dbtools
from service.repositories.postgres import DatabaseUnavailableError, PostgresRepository
from service.repositories.postgres.connection import behind_transaction_pooler
from tests.factories import make_item, make_store
from tests.integration.postgres.databases import SERVER, open_repository

pytestmark = pytest.mark.skipif(pgbouncer_missing() is not None, reason=str(pgbouncer_missing()))


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    # A small server pool, so transactions of many clients really share server connections.
    pgbouncer = PgBouncer(SERVER.admin_dsn, pool_size=3).start()
    yield pgbouncer
    pgbouncer.stop()


@pytest.fixture
async def pooled_empty(bouncer: PgBouncer) -> AsyncIterator[str]:
    async with SERVER.scratch_database(migrated=False) as direct:
        yield bouncer.pooled(direct)


def test_neon_pooler_hosts_are_recognised() -> None:
    neon = "postgresql://u:p@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech/db"
    assert behind_transaction_pooler(neon)
    assert not behind_transaction_pooler(neon.replace("-pooler", ""))
    assert behind_transaction_pooler("postgresql://u@db:6432/x", "transaction")
    assert not behind_transaction_pooler(neon, "direct")


async def test_migrations_and_start_up_work_through_the_pooler(pooled_empty: str) -> None:
    applied = await dbtools.migrate(pooled_empty, pooler="transaction")
    assert applied, "every revision applied through PgBouncer"
    assert await dbtools.migrate(pooled_empty, pooler="transaction") == []
    assert "(head)" in await dbtools.status(pooled_empty, pooler="transaction")
    async with open_repository(pooled_empty, pooler="transaction") as repo:
        await repo.ping()
        assert await repo.is_empty()


async def test_a_session_setting_is_refused_by_the_pooler_as_on_neon(pooled_empty: str) -> None:
    # What the service did before: statement_timeout as a startup parameter. PgBouncer refuses
    # it, so the pooler must be recognised rather than left to fail like this.
    await dbtools.migrate(pooled_empty, pooler="transaction")
    with pytest.raises(DatabaseUnavailableError):
        async with open_repository(pooled_empty, pooler="direct"):
            pass


async def test_a_burst_of_concurrent_work_through_the_pooler_never_fails(
    pooled_empty: str,
) -> None:
    await dbtools.migrate(pooled_empty, pooler="transaction")
    async with open_repository(pooled_empty, pooler="transaction", min_size=5, max_size=20) as repo:
        stores = [make_store() for _ in range(5)]
        for store in stores:
            await repo.save_store(store)
            await repo.save_menu_item(make_item(store.id))

        async def mixed(i: int) -> int:
            store = stores[i % len(stores)]
            if i % 3 == 0:
                await repo.save_store(store)
            menu = await repo.list_menu(store.id)
            found = await repo.get_store(store.id)
            assert found is not None
            listed = await repo.list_stores(limit=10, after=None)
            return len(menu) + len(listed)

        # 200 units of work on 20 client connections over 3 server connections: with a named
        # statement cache this fails with prepared-statement errors; it must not fail at all.
        results = await asyncio.gather(*(mixed(i) for i in range(200)))
        assert all(r == 6 for r in results)
        exported = await repo.export_dataset()
        assert len(exported.stores) == 5


async def test_the_statement_timeout_holds_in_every_transaction(pooled_empty: str) -> None:
    await dbtools.migrate(pooled_empty, pooler="transaction")
    async with open_repository(
        pooled_empty, pooler="transaction", statement_timeout_ms=1234, max_size=8
    ) as repo:
        seen = await asyncio.gather(*(_setting(repo) for _ in range(50)))
    assert set(seen) == {"1234ms"}


async def _setting(repo: PostgresRepository) -> str:
    # The unit-of-work boundary is what sets the timeout; read it from inside one.
    return str(await repo._read("probe", lambda conn: conn.fetchval("SHOW statement_timeout")))
