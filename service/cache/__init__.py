"""Caching: the byte-store port, its in-process and Redis adapters, and read-through caching.

The Redis adapter (and redis-py with it, ~11 MiB per worker) is imported on first use, so a
service without REDIS_URL never loads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.cache.base import CacheMetrics, CacheResult, CacheStore
from service.cache.memory import MemoryCacheStore
from service.cache.readthrough import ReadThroughCache

if TYPE_CHECKING:
    from service.cache.redis import RedisCacheStore

__all__ = [
    "CacheMetrics",
    "CacheResult",
    "CacheStore",
    "MemoryCacheStore",
    "ReadThroughCache",
    "RedisCacheStore",
]


def __getattr__(name: str) -> Any:
    if name == "RedisCacheStore":
        from service.cache.redis import RedisCacheStore

        return RedisCacheStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
