"""Cross-process invalidation by versioned keys.

ReadThroughCache keeps one process from writing a stale value back after an invalidation,
but another process sharing Redis may still finish a load it began before the write and SET
the old value after our DEL. So values live under `<entity>@<version>/<variant>`, and a write
replaces the entity's version: a request that starts after the write reads the new version,
misses, and loads from the backend. A late writer can only fill a key nobody asks for any
more; it expires by its TTL. Versions are random, so a version that was evicted or expired is
replaced by a fresh one that no stale value can share.
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

    async def version(self, entity: str) -> str:
        """The entity's current version; read it once per request and pass it to `get_or_load`."""
        if not self.readthrough.enabled:
            return ""
        found = await self.store.get(f"v:{entity}")
        if found is not None:
            return found.decode()
        return await self._replace_version(entity)

    async def lookup(self, cache_name: str, entity: str, variant: str) -> tuple[str, bytes | None]:
        """The entity's current version and, on a hit, the value cached under it for `variant`,
        in one store read (one Redis round trip). On a miss, load through `get_or_load` with
        the version returned here."""
        if not self.readthrough.enabled:
            return "", None
        version, value = await self.store.get_indirect(f"v:{entity}", f"{entity}@", f"/{variant}")
        if version is None:
            return await self._replace_version(entity), None
        if value is not None:
            self.readthrough.record_hit(cache_name)
        return version.decode(), value

    async def get_or_load(
        self,
        cache_name: str,
        entity: str,
        version: str,
        variant: str,
        loader: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        if not self.readthrough.enabled:
            return await loader()
        key = f"{entity}@{version}/{variant}"
        return await self.readthrough.get_or_load(cache_name, key, loader)

    async def invalidate(self, *entities: str) -> None:
        if not self.readthrough.enabled:
            return
        for entity in entities:
            await self._replace_version(entity)

    async def _replace_version(self, entity: str) -> str:
        version = _new_version()
        await self.store.set(f"v:{entity}", version, VERSION_TTL_S)
        return version.decode()


def _new_version() -> bytes:
    return uuid.uuid4().hex[:16].encode()
