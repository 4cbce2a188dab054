"""A first deploy on Neon's pooled endpoint, reproduced: `pickup db migrate` and `pickup serve`
through a real PgBouncer in transaction mode, then a burst of concurrent requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.pgbouncer import PgBouncer, pgbouncer_missing
from harness.postgres import postgres
from tests.e2e.server import Server, pickup, postgres_env
from tests.e2e.test_serve import STAFF, first_bookable_slot, open_shop, order

pytestmark = pytest.mark.skipif(pgbouncer_missing() is not None, reason=str(pgbouncer_missing()))


@pytest.fixture
def pooled_url() -> Iterator[str]:
    server = postgres()
    direct = server.create_database("pickup_e2e_pooled", migrated=False)
    bouncer = PgBouncer(server.admin_dsn, pool_size=4).start()
    yield bouncer.pooled(direct)
    bouncer.stop()
    server.drop_database(direct)


def test_migrate_serve_and_a_burst_through_a_transaction_pooler(
    pooled_url: str, tmp_path: Path
) -> None:
    env = postgres_env(pooled_url, DB_POOLER="transaction")
    migrate = pickup("db", "migrate", env=env, cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr.decode()
    with Server(env, cwd=tmp_path) as server:
        http = httpx.Client(base_url=server.url, timeout=30)
        store_id, item_id = open_shop(http, capacity=10)
        slot = first_bookable_slot(http, store_id)

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                calls = []
                for i in range(150):
                    if i % 10 == 0:
                        calls.append(client.post("/v1/orders", json=order(store_id, item_id, slot)))
                    elif i % 3 == 0:
                        calls.append(client.get(f"/v1/stores/{store_id}/orders", headers=STAFF))
                    else:
                        calls.append(client.get(f"/v1/stores/{store_id}/menu"))
                return [r.status_code for r in await asyncio.gather(*calls)]

        statuses = asyncio.run(burst())
        assert 503 not in statuses and 500 not in statuses, statuses
        assert statuses.count(201) == 10 and statuses.count(409) == 5
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
