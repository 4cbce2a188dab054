"""Cross-process invalidation by versioned keys.

ReadThroughCache keeps one process from writing a stale value back after an invalidation,
but another process sharing Redis may still finish a load it began before the write and SET
the old value after our DEL. So values live under `<entity>@<version>/<variant>`, and a write
replaces the entity's version: a request that starts after the write reads the new version,
misses, and loads from the backend. A late writer can only fill a key nobody asks for any
more; it expires by its TTL. Versions are random, so a version that was evicted or expired is
replaced by a fresh one that no stale value can share.

A version is created only after a load succeeds: a read of something that does not exist (a 404)
leaves no key behind, so unknown ids cannot fill Redis with week-long keys or evict real entries
from the in-process LRU. An entity without a version gets a fresh one chosen before its load;
the loaded value is stored under it, then the version is claimed only if still absent (SET NX),
so a write that landed meanwhile wins and the value it made stale is never read.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from service.cache.base import CacheStore
from service.cache.readthrough import ReadThroughCache

# Far longer than any value's TTL, so a version outlives everything cached under it.
VERSION_TTL_S = 7 * 24 * 3600


class VersionedCache:
    def __init__(self, store: CacheStore, readthrough: ReadThroughCache) -> None:
        self.store = store
        self.readthrough = readthrough
        # The version a first read is about to claim, so a nested read of the same entity (the
        # gzip entry loads the plain one) uses the same one.
        self._unclaimed: dict[str, str] = {}

    async def version(self, entity: str) -> str | None:
        """The entity's current version, None when it has none yet (nothing is written here);
        read it once per request and pass it to `get_or_load`."""
        if not self.readthrough.enabled:
            return ""
        found = await self.store.get(f"v:{entity}")
        return None if found is None else found.decode()

    async def lookup(
        self, cache_name: str, entity: str, variant: str
    ) -> tuple[str | None, bytes | None]:
        """The entity's current version (None when it has none yet) and, on a hit, the value
        cached under it for `variant`, in one store read (one Redis round trip). On a miss,
        load through `get_or_load` with the version returned here."""
        if not self.readthrough.enabled:
            return "", None
        version, value = await self.store.get_indirect(f"v:{entity}", f"{entity}@", f"/{variant}")
        if version is None:
            return None, None
        if value is not None:
            self.readthrough.record_hit(cache_name)
        return version.decode(), value

    async def get_or_load(
        self,
        cache_name: str,
        entity: str,
        version: str | None,
        variant: str,
        loader: Callable[[], Awaitable[bytes]],
        *,
        ttl_s: float | None = None,
    ) -> bytes:
        """`ttl_s`: a lifetime shorter than the cache's own, for a value that goes stale with
        the clock (the cache's TTL when None)."""
        if not self.readthrough.enabled:
            return await loader()
        claim = version is None
        if version is None:
            version = self._unclaimed.setdefault(entity, _new_version().decode())
        key = f"{entity}@{version}/{variant}"
        if not claim:
            return await self.readthrough.get_or_load(cache_name, key, loader, ttl_s=ttl_s)
        try:
            # A loader that raises (nothing exists) stores nothing, and no version is claimed.
            value = await self.readthrough.get_or_load(cache_name, key, loader, ttl_s=ttl_s)
            await self.store.add(f"v:{entity}", version.encode(), VERSION_TTL_S)
        finally:
            self._unclaimed.pop(entity, None)
        return value

    async def invalidate(self, *entities: str) -> None:
        if not self.readthrough.enabled:
            return
        for entity in entities:
            await self.store.set(f"v:{entity}", _new_version(), VERSION_TTL_S)


def _new_version() -> bytes:
    return uuid.uuid4().hex[:16].encode()
