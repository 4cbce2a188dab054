from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from service.domain import lifecycle
from service.domain.errors import IdempotencyConflictError, NotFoundError, SlotFullError
from service.domain.models import OrderStatus
from service.ports import Dataset, IdempotencyKey, NewOrder, OrderQuery, PickupRepository
from service.usecases.seed import demo_dataset
from tests.factories import NOW, make_item, make_order, make_store


async def test_a_new_repository_is_empty(repository: PickupRepository) -> None:
    assert await repository.is_empty()
    await repository.ping()


async def test_stores_round_trip_and_update(repository: PickupRepository) -> None:
    store = make_store()
    await repository.save_store(store)
    assert await repository.get_store(store.id) == store
    renamed = replace(store, name="Renamed", accepting_orders=False)
    await repository.save_store(renamed)
    assert await repository.get_store(store.id) == renamed
    assert await repository.get_store(make_store().id) is None


async def test_stores_page_by_id_without_gaps_or_repeats(repository: PickupRepository) -> None:
    stores = [make_store() for _ in range(5)]
    for store in stores:
        await repository.save_store(store)
    first = await repository.list_stores(limit=3, after=None)
    rest = await repository.list_stores(limit=3, after=first[-1].id)
    assert [s.id for s in first + rest] == sorted(s.id for s in stores)


async def test_menu_items_belong_to_their_store(repository: PickupRepository) -> None:
    a, b = make_store(), make_store()
    await repository.save_store(a)
    await repository.save_store(b)
    item = make_item(a.id, tags=("vegan", "hot"))
    await repository.save_menu_item(item)
    await repository.save_menu_item(make_item(b.id))
    assert await repository.list_menu(a.id) == [item]
    assert await repository.get_menu_item(item.id) == item
    await repository.save_menu_item(replace(item, price_cents=999, available=False))
    assert (await repository.list_menu(a.id))[0].price_cents == 999


async def seeded(repository: PickupRepository, capacity: int = 3):  # type: ignore[no-untyped-def]
    store = make_store(slot_capacity=capacity)
    item = make_item(store.id)
    await repository.save_store(store)
    await repository.save_menu_item(item)
    return store, item


async def test_orders_round_trip_with_lines_and_history(repository: PickupRepository) -> None:
    store, item = await seeded(repository)
    order = make_order(store, item, note="no sugar")
    saved, created = await repository.create_order(NewOrder(order, capacity=3))
    assert created and saved == order
    assert await repository.get_order(order.id) == order


async def test_capacity_is_never_exceeded_under_concurrency(repository: PickupRepository) -> None:
    store, item = await seeded(repository, capacity=5)
    results = await asyncio.gather(
        *(
            repository.create_order(NewOrder(make_order(store, item), capacity=5))
            for _ in range(50)
        ),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, tuple)) == 5
    assert all(isinstance(r, SlotFullError) for r in results if not isinstance(r, tuple))


async def test_cancelled_orders_release_their_slot(repository: PickupRepository) -> None:
    store, item = await seeded(repository, capacity=1)
    order = make_order(store, item)
    await repository.create_order(NewOrder(order, capacity=1))
    with pytest.raises(SlotFullError):
        await repository.create_order(NewOrder(make_order(store, item), capacity=1))
    await repository.update_order(
        order.id, lambda o: lifecycle.transition(o, OrderStatus.CANCELLED, actor="staff", at=NOW)
    )
    await repository.create_order(NewOrder(make_order(store, item), capacity=1))


async def test_idempotent_retry_returns_the_first_order(repository: PickupRepository) -> None:
    store, item = await seeded(repository)
    key = IdempotencyKey("retry-1", "fingerprint-a")
    first, created = await repository.create_order(
        NewOrder(make_order(store, item), capacity=3, idempotency=key)
    )
    again, created_again = await repository.create_order(
        NewOrder(make_order(store, item), capacity=3, idempotency=key)
    )
    assert created and not created_again and again.id == first.id
    assert await repository.get_idempotent("retry-1") == ("fingerprint-a", first)
    with pytest.raises(IdempotencyConflictError):
        await repository.create_order(
            NewOrder(
                make_order(store, item), capacity=3, idempotency=IdempotencyKey("retry-1", "other")
            )
        )


async def test_concurrent_retries_with_one_key_create_one_order(
    repository: PickupRepository,
) -> None:
    store, item = await seeded(repository, capacity=50)
    key = IdempotencyKey("same-key", "same-body")
    results = await asyncio.gather(
        *(
            repository.create_order(NewOrder(make_order(store, item), capacity=50, idempotency=key))
            for _ in range(20)
        )
    )
    assert len({order.id for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_update_order_applies_a_change_atomically(repository: PickupRepository) -> None:
    store, item = await seeded(repository)
    order = make_order(store, item)
    await repository.create_order(NewOrder(order, capacity=3))
    accept = lambda o: lifecycle.transition(o, OrderStatus.ACCEPTED, actor="staff", at=NOW)  # noqa: E731
    results = await asyncio.gather(
        *(repository.update_order(order.id, accept) for _ in range(5)), return_exceptions=True
    )
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    stored = await repository.get_order(order.id)
    assert stored is not None and stored.status == OrderStatus.ACCEPTED
    assert [h.status for h in stored.history] == [OrderStatus.PLACED, OrderStatus.ACCEPTED]
    with pytest.raises(NotFoundError):
        await repository.update_order(make_order(store, item).id, accept)


async def test_held_by_slot_counts_only_live_orders_in_range(repository: PickupRepository) -> None:
    store, item = await seeded(repository)
    slot = NOW + timedelta(hours=1)
    for status in (OrderStatus.PLACED, OrderStatus.READY, OrderStatus.CANCELLED):
        await repository.create_order(NewOrder(make_order(store, item, status=status), capacity=3))
    later = make_order(store, item, pickup_slot_start=slot + timedelta(minutes=15))
    await repository.create_order(NewOrder(later, capacity=3))
    held = await repository.held_by_slot(store.id, slot, slot + timedelta(minutes=15))
    assert held == {slot: 2}


async def test_orders_list_by_status_and_range_in_slot_order(repository: PickupRepository) -> None:
    store, item = await seeded(repository, capacity=10)
    orders = [
        make_order(store, item, pickup_slot_start=NOW + timedelta(minutes=15 * i)) for i in range(6)
    ]
    for order in orders:
        await repository.create_order(NewOrder(order, capacity=10))
    await repository.update_order(
        orders[0].id, lambda o: lifecycle.transition(o, OrderStatus.ACCEPTED, actor="staff", at=NOW)
    )
    placed = await repository.list_orders(
        OrderQuery(store_id=store.id, status=OrderStatus.PLACED, limit=3)
    )
    assert [o.id for o in placed] == [o.id for o in orders[1:4]]
    after = (placed[-1].pickup_slot_start, placed[-1].id)
    rest = await repository.list_orders(
        OrderQuery(store_id=store.id, status=OrderStatus.PLACED, limit=10, after=after)
    )
    assert [o.id for o in rest] == [o.id for o in orders[4:]]
    window = await repository.list_orders(
        OrderQuery(
            store_id=store.id,
            start=orders[2].pickup_slot_start,
            end=orders[4].pickup_slot_start,
            limit=10,
        )
    )
    assert [o.id for o in window] == [orders[2].id, orders[3].id]


async def test_a_dataset_round_trips_through_import_and_export(
    repository: PickupRepository,
) -> None:
    data = demo_dataset(stores=2, items_per_store=5, orders=20, seed=7)
    await repository.import_dataset(data)
    exported = await repository.export_dataset()
    assert sorted(exported.stores, key=lambda s: s.id) == sorted(data.stores, key=lambda s: s.id)
    assert sorted(exported.menu_items, key=lambda i: i.id) == sorted(
        data.menu_items, key=lambda i: i.id
    )
    assert sorted(exported.orders, key=lambda o: o.id) == sorted(data.orders, key=lambda o: o.id)
    assert not await repository.is_empty()


async def test_importing_the_same_dataset_twice_changes_nothing(
    repository: PickupRepository,
) -> None:
    data = demo_dataset(stores=1, items_per_store=3, orders=5, seed=1)
    await repository.import_dataset(data)
    await repository.import_dataset(data)
    exported = await repository.export_dataset()
    assert (len(exported.stores), len(exported.menu_items), len(exported.orders)) == (1, 3, 5)
    assert isinstance(exported, Dataset)


async def test_an_import_takes_orders_from_a_generator_and_counts_them(
    repository: PickupRepository,
) -> None:
    data = demo_dataset(stores=2, items_per_store=3, orders=25, seed=9)
    loaded = await repository.import_dataset(
        Dataset(data.stores, data.menu_items, (order for order in data.orders))
    )
    assert loaded == 25
    exported = await repository.export_dataset()
    assert sorted(o.id for o in exported.orders) == sorted(o.id for o in data.orders)
    assert await repository.get_order(data.orders[3].id) == data.orders[3]
