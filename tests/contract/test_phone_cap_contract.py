"""The cap on active orders per phone number per store, on every backend: exact sequentially
and under concurrency (bookings by one phone at one store are serialised)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from service.domain import lifecycle
from service.domain.errors import TooManyLiveOrdersError
from service.domain.models import OrderStatus
from service.ports import NewOrder, PickupRepository
from tests.factories import NOW, make_item, make_order, make_store


async def shop(repository: PickupRepository):  # type: ignore[no-untyped-def]
    store, other = make_store(), make_store()
    item, other_item = make_item(store.id), make_item(other.id)
    for s in (store, other):
        await repository.save_store(s)
    await repository.save_menu_item(item)
    await repository.save_menu_item(other_item)
    return store, item, other, other_item


def slot(n: int):  # type: ignore[no-untyped-def]
    return NOW + timedelta(hours=1, minutes=15 * n)


async def test_a_phone_gets_at_most_the_cap_of_active_orders_at_one_store(
    repository: PickupRepository,
) -> None:
    store, item, other, other_item = await shop(repository)
    spellings = ["+44 7700 900123", "+447700900123", "+44 (7700) 900-123"]
    for n, phone in enumerate(spellings[:2]):
        order = make_order(store, item, customer_phone=phone, pickup_slot_start=slot(n))
        await repository.create_order(NewOrder(order, capacity=10, phone_cap=2))
    with pytest.raises(TooManyLiveOrdersError):
        third = make_order(store, item, customer_phone=spellings[2], pickup_slot_start=slot(3))
        await repository.create_order(NewOrder(third, capacity=10, phone_cap=2))
    # Another store, another phone, or no cap: unaffected.
    elsewhere = make_order(other, other_item, customer_phone=spellings[0])
    await repository.create_order(NewOrder(elsewhere, capacity=10, phone_cap=2))
    someone_else = make_order(store, item, customer_phone="+44 7700 900999")
    await repository.create_order(NewOrder(someone_else, capacity=10, phone_cap=2))
    uncapped = make_order(store, item, customer_phone=spellings[0])
    await repository.create_order(NewOrder(uncapped, capacity=10))


async def test_a_cancelled_order_frees_its_place_under_the_cap(
    repository: PickupRepository,
) -> None:
    store, item, _, _ = await shop(repository)
    first = make_order(store, item)
    await repository.create_order(NewOrder(first, capacity=10, phone_cap=1))
    with pytest.raises(TooManyLiveOrdersError):
        await repository.create_order(NewOrder(make_order(store, item), capacity=10, phone_cap=1))
    await repository.update_order(
        first.id,
        lambda o: lifecycle.transition(o, OrderStatus.CANCELLED, actor="customer", at=NOW),
    )
    await repository.create_order(NewOrder(make_order(store, item), capacity=10, phone_cap=1))


async def test_concurrent_bookings_by_one_phone_never_exceed_the_cap(
    repository: PickupRepository,
) -> None:
    store, item, _, _ = await shop(repository)
    results = await asyncio.gather(
        *(
            repository.create_order(
                NewOrder(
                    make_order(store, item, pickup_slot_start=slot(n % 8)), capacity=50, phone_cap=3
                )
            )
            for n in range(24)
        ),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, tuple)) == 3
    assert all(isinstance(r, TooManyLiveOrdersError) for r in results if not isinstance(r, tuple))
