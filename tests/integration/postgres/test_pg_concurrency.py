"""Capacity and idempotency hold across two pools, as they must across two server processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from service.domain import lifecycle
from service.domain.errors import IdempotencyConflictError, InvalidTransitionError, SlotFullError
from service.domain.models import MenuItem, Order, OrderStatus, Store
from service.ports import IdempotencyKey, NewOrder, OrderQuery
from service.repositories.postgres import PostgresRepository
from tests.factories import NOW, make_item, make_order, make_store
from tests.integration.postgres.databases import open_repository

pytestmark = pytest.mark.postgres


@pytest.fixture
async def two_processes(database: str) -> AsyncIterator[tuple[PostgresRepository, ...]]:
    async with open_repository(database) as one, open_repository(database) as two:
        yield one, two


async def shop(repo: PostgresRepository, capacity: int) -> tuple[Store, MenuItem]:
    store = make_store(slot_capacity=capacity)
    item = make_item(store.id)
    await repo.save_store(store)
    await repo.save_menu_item(item)
    return store, item


async def test_fifty_bookings_through_two_pools_fill_a_slot_of_five_exactly(
    two_processes: tuple[PostgresRepository, ...], database: str
) -> None:
    store, item = await shop(two_processes[0], capacity=5)
    results = await asyncio.gather(
        *(
            two_processes[n % 2].create_order(NewOrder(make_order(store, item), capacity=5))
            for n in range(50)
        ),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, tuple)) == 5
    assert all(isinstance(r, SlotFullError) for r in results if not isinstance(r, tuple))
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 5
        assert await conn.fetchval("SELECT count(*) FROM order_lines") == 5
    finally:
        await conn.close()


async def test_idempotent_retries_through_two_pools_create_one_order(
    two_processes: tuple[PostgresRepository, ...],
) -> None:
    store, item = await shop(two_processes[0], capacity=50)
    key = IdempotencyKey("retry-across-workers", "body-1")
    results = await asyncio.gather(
        *(
            two_processes[n % 2].create_order(
                NewOrder(make_order(store, item), capacity=50, idempotency=key)
            )
            for n in range(20)
        )
    )
    assert len({order.id for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    for repo in two_processes:
        found = await repo.get_idempotent(key.key)
        assert found is not None and found[1].id == results[0][0].id


async def test_one_key_sent_with_different_bodies_at_once_creates_one_order(
    two_processes: tuple[PostgresRepository, ...],
) -> None:
    # Different slots take different locks, so these race on the unique key itself.
    store, item = await shop(two_processes[0], capacity=5)
    attempts = [
        two_processes[n % 2].create_order(
            NewOrder(
                make_order(store, item, pickup_slot_start=NOW + timedelta(minutes=15 * n)),
                capacity=5,
                idempotency=IdempotencyKey("reused-key", f"body-{n}"),
            )
        )
        for n in range(10)
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    created = [r for r in results if isinstance(r, tuple)]
    assert len(created) == 1 and created[0][1] is True
    assert all(isinstance(r, IdempotencyConflictError) for r in results if r not in created)
    listed = await two_processes[1].list_orders(OrderQuery(store_id=store.id, limit=50))
    assert [o.id for o in listed] == [created[0][0].id]


async def test_a_status_change_raced_from_two_pools_is_applied_once(
    two_processes: tuple[PostgresRepository, ...],
) -> None:
    store, item = await shop(two_processes[0], capacity=5)
    order = make_order(store, item)
    await two_processes[0].create_order(NewOrder(order, capacity=5))

    def accept(o: Order) -> Order:
        return lifecycle.transition(o, OrderStatus.ACCEPTED, actor="staff", at=NOW)

    results = await asyncio.gather(
        *(two_processes[n % 2].update_order(order.id, accept) for n in range(10)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
    assert all(isinstance(r, InvalidTransitionError) for r in results if isinstance(r, Exception))
    stored = await two_processes[1].get_order(order.id)
    assert stored is not None
    assert [h.status for h in stored.history] == [OrderStatus.PLACED, OrderStatus.ACCEPTED]
