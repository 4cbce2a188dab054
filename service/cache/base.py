"""The cache port: a byte store with per-entry TTL, and the metrics sink adapters report to."""

from __future__ import annotations

from typing import Literal, Protocol

CacheResult = Literal["hit", "miss", "error"]


class CacheStore(Protocol):
    """Stores never raise for backend failures: a broken backend reads as a miss, so a request can
    always fall through to the source of truth."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_indirect(
        self, pointer_key: str, prefix: str, suffix: str
    ) -> tuple[bytes | None, bytes | None]:
        """`pointer_key`'s value P and the value of `prefix + P + suffix`, read together (one
        round trip on a network store); (None, None) when the pointer is missing."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Set only if absent (Redis SET NX); True when this call set it."""
        ...

    async def delete(self, *keys: str) -> None: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


class CacheMetrics(Protocol):
    """What the cache layer reports; `service.observability.metrics.Metrics` satisfies it."""

    def cache_request(self, cache: str, result: CacheResult) -> None: ...

    def cache_store_error(self, backend: str, operation: str) -> None: ...
