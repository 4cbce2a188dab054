from __future__ import annotations

import pytest

from service.cache.memory import ENTRY_OVERHEAD_BYTES, MemoryCacheStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_a_value_is_served_until_its_ttl_expires(clock: FakeClock) -> None:
    store = MemoryCacheStore(max_entries=10, clock=clock)
    await store.set("menu:1", b"body", ttl_s=0.5)

    clock.advance(0.49)
    assert await store.get("menu:1") == b"body"
    clock.advance(0.02)
    assert await store.get("menu:1") is None


async def test_an_expired_entry_frees_its_slot_when_read(clock: FakeClock) -> None:
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


async def test_overwriting_a_key_refreshes_its_value_and_ttl(clock: FakeClock) -> None:
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


async def test_the_store_is_bounded_in_bytes_evicting_the_least_recently_used() -> None:
    store = MemoryCacheStore(max_entries=1000, max_bytes=3 * (1 + 1000 + ENTRY_OVERHEAD_BYTES))
    for key in "abc":
        await store.set(key, b"x" * 1000, ttl_s=60)
    assert await store.get("a") is not None  # a is now the most recently used

    await store.set("d", b"y" * 1000, ttl_s=60)

    assert await store.get("b") is None
    assert {k: await store.get(k) is not None for k in "acd"} == {"a": True, "c": True, "d": True}
    assert store.size_bytes <= 3 * (1 + 1000 + ENTRY_OVERHEAD_BYTES)


async def test_replacing_and_deleting_values_keeps_the_byte_count_exact() -> None:
    store = MemoryCacheStore(max_entries=10, max_bytes=1_000_000)
    await store.set("k", b"1" * 500, ttl_s=60)
    await store.set("k", b"2" * 100, ttl_s=60)
    assert store.size_bytes == 1 + 100 + ENTRY_OVERHEAD_BYTES
    await store.delete("k")
    assert store.size_bytes == 0


async def test_a_value_larger_than_the_whole_budget_is_not_cached_and_evicts_nothing() -> None:
    store = MemoryCacheStore(max_entries=10, max_bytes=2000)
    await store.set("small", b"s", ttl_s=60)
    await store.set("huge", b"h" * 5000, ttl_s=60)

    assert await store.get("huge") is None
    assert await store.get("small") == b"s"


async def test_an_indirect_read_follows_the_pointer_in_one_call() -> None:
    store = MemoryCacheStore(max_entries=10)
    assert await store.get_indirect("v:menu", "menu@", "/body") == (None, None)
    await store.set("v:menu", b"abc", ttl_s=60)
    assert await store.get_indirect("v:menu", "menu@", "/body") == (b"abc", None)
    await store.set("menu@abc/body", b"{}", ttl_s=60)
    assert await store.get_indirect("v:menu", "menu@", "/body") == (b"abc", b"{}")
