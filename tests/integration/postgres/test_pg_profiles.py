"""QUERY_PROFILE=naive is only slower: every answer equals the optimized profile's, and it
sends the statements a first implementation would (one more per order read: N+1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from service.domain import lifecycle
from service.domain.errors import SlotFullError
from service.domain.models import MenuItem, OrderStatus, Store
from service.lab.naive_sql import NAIVE
from service.ports import Dataset, IdempotencyKey, NewOrder, OrderQuery
from service.repositories.postgres import PostgresRepository
from service.usecases.seed import EPOCH, demo_dataset
from tests.factories import NOW, make_order
from tests.integration.postgres.databases import open_repository

pytestmark = pytest.mark.postgres


class Statements:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def imported(repo: PostgresRepository, **sizes: int) -> Dataset:
    """A demo dataset of `sizes` (stores, items_per_store, orders, seed), imported into `repo`."""
    data = demo_dataset(**sizes)
    await repo.import_dataset(data)
    return data


async def shop_in(repo: PostgresRepository, **sizes: int) -> tuple[Dataset, Store, MenuItem]:
    """`imported`, with the store and the menu item new orders are made of (the first ones)."""
    data = await imported(repo, **sizes)
    return data, data.stores[0], data.menu_items[0]


@pytest.fixture
async def profiles(database: str) -> AsyncIterator[tuple[PostgresRepository, PostgresRepository]]:
    async with (
        open_repository(database) as optimized,
        open_repository(database, queries=NAIVE) as naive,
    ):
        yield optimized, naive


async def test_the_naive_profile_answers_exactly_like_the_optimized_one(
    profiles: tuple[PostgresRepository, PostgresRepository],
) -> None:
    optimized, naive = profiles
    data, store, item = await shop_in(optimized, stores=4, items_per_store=12, orders=600, seed=11)
    key = IdempotencyKey("profile-key", "body")
    booked, _ = await optimized.create_order(
        NewOrder(make_order(store, item), capacity=9, idempotency=key)
    )
    week = (EPOCH + timedelta(days=30), EPOCH + timedelta(days=37))

    async def answers(repo: PostgresRepository) -> list[object]:
        first = await repo.list_stores(limit=2, after=None)
        found: list[object] = [first, await repo.list_stores(limit=5, after=first[-1].id)]
        for s in data.stores:
            found += [await repo.get_store(s.id), await repo.list_menu(s.id)]
            found.append(await repo.held_by_slot(s.id, *week))
            for status in (None, OrderStatus.PICKED_UP, OrderStatus.CANCELLED):
                page = await repo.list_orders(
                    OrderQuery(store_id=s.id, status=status, start=week[0], limit=7)
                )
                after = (page[-1].pickup_slot_start, page[-1].id) if page else None
                found += [
                    page,
                    await repo.list_orders(
                        OrderQuery(store_id=s.id, status=status, end=week[1], limit=50, after=after)
                    ),
                ]
        found += [await repo.get_menu_item(item.id), await repo.get_order(data.orders[7].id)]
        found += [await repo.get_idempotent(key.key), await repo.get_order(booked.id)]
        return found

    expected = await answers(optimized)
    assert sum(1 for a in expected if a) > len(expected) / 2  # most hold something to compare
    assert await answers(naive) == expected


async def test_the_naive_profile_still_enforces_capacity_and_applies_changes(
    profiles: tuple[PostgresRepository, PostgresRepository],
) -> None:
    optimized, naive = profiles
    _, store, item = await shop_in(optimized, stores=1, items_per_store=3, orders=0, seed=1)
    first, _ = await naive.create_order(NewOrder(make_order(store, item), capacity=2))
    await optimized.create_order(NewOrder(make_order(store, item), capacity=2))
    with pytest.raises(SlotFullError):
        await naive.create_order(NewOrder(make_order(store, item), capacity=2))
    accepted = await naive.update_order(
        first.id, lambda o: lifecycle.transition(o, OrderStatus.ACCEPTED, actor="staff", at=NOW)
    )
    assert await optimized.get_order(first.id) == accepted


async def test_the_naive_profile_reads_each_orders_lines_with_one_more_statement(
    database: str,
) -> None:
    counted = {"optimized": Statements(), "naive": Statements()}
    async with (
        open_repository(database, on_statement=counted["optimized"]) as optimized,
        open_repository(database, queries=NAIVE, on_statement=counted["naive"]) as naive,
    ):
        data = await imported(optimized, stores=1, items_per_store=3, orders=40, seed=5)
        store_id = data.stores[0].id
        pages, sent = {}, {}
        for name, repo in (("optimized", optimized), ("naive", naive)):
            # The first use of a statement also runs asyncpg's type introspection: warm up.
            await repo.list_orders(OrderQuery(store_id=store_id, limit=10))
            # asyncpg reports each statement just after it completes; let reports arrive.
            await asyncio.sleep(0.01)
            before = counted[name].count
            pages[name] = await repo.list_orders(OrderQuery(store_id=store_id, limit=10))
            await asyncio.sleep(0.01)
            sent[name] = counted[name].count - before
    assert pages["naive"] == pages["optimized"] and len(pages["naive"]) == 10
    # Each unit of work also ends with the pool's reset statement, counted like any other.
    assert sent == {"optimized": 1 + 1, "naive": 1 + 10 + 1}
