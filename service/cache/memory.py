"""An in-process cache store: bounded in bytes (and entries), LRU, and by TTL.

Bounding by entry count alone lets a few large bodies (a 20 KB menu and its gzip form per
store and page) grow a worker without limit; the byte budget is what keeps its peak RSS known.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

# What an entry costs beyond its key and value: the OrderedDict slot, the tuple, the float
# and the bytes objects' headers (measured ~200 bytes on CPython 3.11).
ENTRY_OVERHEAD_BYTES = 200


class MemoryCacheStore:
    def __init__(
        self,
        max_entries: int,
        *,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        # Insertion order doubles as recency order: a hit moves its key to the end, so the
        # first key is always the least recently used one.
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """What the entries hold, keys and per-entry overhead included."""
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def get_indirect(
        self, pointer_key: str, prefix: str, suffix: str
    ) -> tuple[bytes | None, bytes | None]:
        pointer = await self.get(pointer_key)
        if pointer is None:
            return None, None
        return pointer, await self.get(f"{prefix}{pointer.decode()}{suffix}")

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        cost = _cost(key, value)
        if self._max_bytes is not None and cost > self._max_bytes:
            # Storing it would evict everything else and still not fit.
            self._drop(key)
            return
        self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, value)
        self._bytes += cost
        while len(self._entries) > self._max_entries or (
            self._max_bytes is not None and self._bytes > self._max_bytes
        ):
            oldest, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= _cost(oldest, evicted)

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl_s)
        return ttl_s > 0

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._drop(key)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= _cost(key, entry[1])


def _cost(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD_BYTES
