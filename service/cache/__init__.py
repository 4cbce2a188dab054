"""Caching: the byte-store port, its in-process and Redis adapters, and read-through caching."""

from __future__ import annotations

from service.cache.base import CacheMetrics, CacheResult, CacheStore
from service.cache.memory import MemoryCacheStore
from service.cache.readthrough import ReadThroughCache
from service.cache.redis import RedisCacheStore

__all__ = [
    "CacheMetrics",
    "CacheResult",
    "CacheStore",
    "MemoryCacheStore",
    "ReadThroughCache",
    "RedisCacheStore",
]
