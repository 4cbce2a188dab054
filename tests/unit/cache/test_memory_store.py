from __future__ import annotations

import pytest

from service.cache.memory import MemoryCacheStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def test_a_value_is_served_until_its_ttl_expires() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(max_entries=10, clock=clock)
    await store.set("menu:1", b"body", ttl_s=0.5)

    clock.advance(0.49)
    assert await store.get("menu:1") == b"body"
    clock.advance(0.02)
    assert await store.get("menu:1") is None


async def test_an_expired_entry_frees_its_slot_when_read() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(max_entries=10, clock=clock)
    await store.set("a", b"1", ttl_s=0.1)
    clock.advance(1)

    await store.get("a")

    assert len(store) == 0


async def test_the_least_recently_used_entry_is_evicted_when_full() -> None:
    store = MemoryCacheStore(max_entries=2)
    await store.set("a", b"1", ttl_s=60)
    await store.set("b", b"2", ttl_s=60)
    await store.set("c", b"3", ttl_s=60)

    assert len(store) == 2
    assert await store.get("a") is None
    assert await store.get("b") == b"2"
    assert await store.get("c") == b"3"


async def test_reading_an_entry_protects_it_from_eviction() -> None:
    store = MemoryCacheStore(max_entries=2)
    await store.set("a", b"1", ttl_s=60)
    await store.set("b", b"2", ttl_s=60)
    await store.get("a")
    await store.set("c", b"3", ttl_s=60)

    assert await store.get("a") == b"1"
    assert await store.get("b") is None


async def test_overwriting_a_key_refreshes_its_value_and_ttl() -> None:
    clock = FakeClock()
    store = MemoryCacheStore(max_entries=2, clock=clock)
    await store.set("a", b"old", ttl_s=1)
    clock.advance(0.9)
    await store.set("a", b"new", ttl_s=1)
    clock.advance(0.9)

    assert await store.get("a") == b"new"
    assert len(store) == 1


async def test_delete_removes_only_the_named_keys() -> None:
    store = MemoryCacheStore(max_entries=10)
    for key in ("a", "b", "c"):
        await store.set(key, key.encode(), ttl_s=60)

    await store.delete("a", "c", "never-set")

    assert await store.get("a") is None
    assert await store.get("b") == b"b"
    assert await store.get("c") is None


async def test_a_non_positive_ttl_stores_nothing() -> None:
    store = MemoryCacheStore(max_entries=10)
    await store.set("a", b"1", ttl_s=0)
    assert await store.get("a") is None


def test_a_store_must_hold_at_least_one_entry() -> None:
    with pytest.raises(ValueError):
        MemoryCacheStore(max_entries=0)
