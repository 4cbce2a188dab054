"""The bootstrap: the one place that turns Settings into concrete adapters.

`app` (the HTTP composition root), `cli` and `devsetup` all build their adapters here, so none of
them needs to know which backend it got: `open_storage` returns the repository as its ports plus
whatever optional capability the backend has (pool statistics, a query profile to announce) as
plain values, never as a type to downcast to. Lab-only switches (service.lab) are selected here
and nowhere else; Settings refuses them in production.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog

from service.ai import OpenAIRecommender
from service.breaker import AsyncCircuitBreaker
from service.cache import MemoryCacheStore, ReadThroughCache
from service.cache.base import CacheStore
from service.cache.versioned import VersionedCache
from service.config import Settings
from service.http.caching import (
    MENU_ENTITY,
    ORDER_ENTITY,
    SLOTS_ENTITY,
    STORE_ENTITY,
    STORES_ENTITY,
)
from service.http.context import AppContext, ReadinessCheck
from service.http.routes.health import READINESS_TIMEOUT_S
from service.observability import Metrics
from service.observability.instrumented import instrument
from service.ports import PickupRepository
from service.ratelimit import Limiter
from service.repositories.json_store import JsonFileRepository
from service.repositories.postgres import OPTIMIZED, PostgresRepository, Queries
from service.usecases.seed import demo_dataset

log = structlog.get_logger("service")

Closer = Callable[[], Awaitable[None]]
Encoder = Callable[[Any], bytes]
PoolStats = Callable[[], Mapping[str, float]]
CACHE_KEY_PREFIX = "pickup:cache:"


@dataclass(frozen=True, slots=True)
class Storage:
    """An open data backend: its ports, and what it can tell besides (None when it cannot)."""

    repo: PickupRepository
    aclose: Closer
    pool_stats: PoolStats | None = None
    query_profile: str | None = None  # said by /readyz so a lab baseline never passes unnoticed

    @property
    def backend(self) -> str:
        return self.repo.backend


def query_set(settings: Settings) -> Queries:
    if settings.query_profile == "naive":
        from service.lab.naive_sql import NAIVE

        log.warning("naive_query_profile", detail="lab baseline: a first implementation's SQL")
        return NAIVE
    return OPTIMIZED


def response_encoder(settings: Settings) -> Encoder:
    if settings.response_encoder == "stdlib":
        from service.lab.encoders import stdlib_dumps

        return stdlib_dumps
    return orjson.dumps


async def open_storage(
    settings: Settings, metrics: Metrics | None = None, *, writable: bool = True
) -> Storage:
    """Open the configured backend. With `metrics`, every SQL statement is counted
    (db_statements_total) where the driver executes it. `writable=False` (exports) lets the
    JSON backend read a file another process is writing, without taking its write lock."""
    if settings.data_backend == "json":
        json_repo = await JsonFileRepository.open(settings.json_data_path, writable=writable)
        return Storage(repo=json_repo, aclose=json_repo.aclose)
    assert settings.database_url is not None  # Settings refuses postgres without it
    counter = metrics.db_statement if metrics is not None else None
    pg = await PostgresRepository.open(
        settings.database_url.get_secret_value(),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        pooler=settings.db_pooler,
        queries=query_set(settings),
        on_statement=(lambda: counter("postgres")) if counter is not None else None,
    )
    return Storage(
        repo=pg, aclose=pg.aclose, pool_stats=pg.pool_stats, query_profile=settings.query_profile
    )


def build_cache_store(settings: Settings, metrics: Metrics | None) -> CacheStore:
    if settings.redis_url is None:
        return MemoryCacheStore(settings.cache_max_entries, max_bytes=settings.cache_max_bytes)
    from service.cache.redis import RedisCacheStore  # redis-py only where Redis is configured

    return RedisCacheStore.from_url(
        settings.redis_url.get_secret_value(),
        op_timeout_s=settings.cache_op_timeout_ms / 1000,
        connect_timeout_s=settings.cache_connect_timeout_ms / 1000,
        key_prefix=CACHE_KEY_PREFIX,
        metrics=metrics,
    )


def build_breaker(settings: Settings, metrics: Metrics | None) -> AsyncCircuitBreaker:
    breaker = AsyncCircuitBreaker(
        "openai", fail_max=settings.breaker_fail_max, reset_timeout=settings.breaker_reset_timeout_s
    )
    if metrics is not None:
        metrics.set_circuit_state(breaker.name, "closed")
        breaker.add_listener(metrics.circuit_state_changed)
    return breaker


def build_recommender(settings: Settings, breaker: AsyncCircuitBreaker) -> OpenAIRecommender | None:
    if settings.openai_api_key is None:
        return None
    return OpenAIRecommender(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        timeout_s=settings.openai_timeout_ms / 1000,
        max_concurrency=settings.ai_max_concurrency,
        breaker=breaker,
    )


def build_limiter(settings: Settings, metrics: Metrics | None) -> Limiter:
    return Limiter(
        settings.redis_url.get_secret_value() if settings.redis_url else "memory://",
        strategy=settings.rate_limit_strategy,
        fail_open=settings.rate_limit_fail_open,
        on_storage_error=metrics.rate_limit_storage_error if metrics else None,
    )


async def invalidate_after_cli_write(
    settings: Settings, store_ids: Sequence[str], order_ids: Sequence[str] = ()
) -> str:
    """After a CLI write (`pickup seed`, `pickup data import`): bump the cached entities of the
    written stores (and the ETags kept for the written orders) when the cache is shared (Redis),
    so running servers serve the new data at once. An in-process cache lives inside each server
    and cannot be reached from here, so the operator is told how long those servers may keep
    serving what they had. Returns that line."""
    if not settings.cache_enabled:
        return "cache: disabled, nothing to invalidate"
    if settings.redis_url is None:
        return (
            "cache: in-process (no REDIS_URL): running servers keep serving cached stores, "
            "menus and order ETags for up to "
            f"CACHE_TTL_SECONDS={settings.cache_ttl_seconds:g}s; restart them to serve the new "
            "data at once"
        )
    store = build_cache_store(settings, None)
    try:
        if not await store.ping():
            return (
                "cache: Redis did not answer; running servers may keep serving cached stores, "
                f"menus and order ETags for up to CACHE_TTL_SECONDS={settings.cache_ttl_seconds:g}s"
            )
        cache = VersionedCache(store, ReadThroughCache(store, ttl_s=settings.cache_ttl_seconds))
        entities = [STORES_ENTITY, SLOTS_ENTITY]
        for store_id in store_ids:
            entities += [
                STORE_ENTITY.format(store_id=store_id),
                MENU_ENTITY.format(store_id=store_id),
            ]
        entities += [ORDER_ENTITY.format(order_id=order_id) for order_id in order_ids]
        await cache.invalidate(*entities)
    finally:
        await store.aclose()
    orders = f" and {len(order_ids)} orders" if order_ids else ""
    return f"cache: invalidated stores and the menus of {len(store_ids)} stores{orders} in Redis"


async def build_context(
    settings: Settings,
    clock: Callable[[], datetime],
    metrics: Metrics | None,
    closers: list[Closer],
    limiter: Limiter | None = None,
) -> AppContext:
    """Everything the HTTP handlers use, opened in order; `closers` gets each one's aclose.
    `limiter`: the request limiter, whose storage /readyz checks."""
    storage = await open_storage(settings, metrics)
    closers.append(storage.aclose)
    repo = storage.repo
    if settings.loads_demo_data and await repo.is_empty():
        await repo.import_dataset(demo_dataset())
        log.info("demo_data_loaded", backend=repo.backend)
    if metrics is not None:
        if storage.pool_stats is not None:
            metrics.track_db_pool(storage.pool_stats)
        repo = instrument(repo, metrics)

    store = build_cache_store(settings, metrics)
    closers.append(store.aclose)
    cache = VersionedCache(
        store,
        ReadThroughCache(
            store, ttl_s=settings.cache_ttl_seconds, enabled=settings.cache_enabled, metrics=metrics
        ),
    )

    breaker = build_breaker(settings, metrics)
    recommender = build_recommender(settings, breaker)
    if recommender is not None:
        closers.append(recommender.aclose)

    profile = storage.query_profile

    async def database() -> tuple[str, dict[str, Any]]:
        await repo.ping()
        detail: dict[str, Any] = {"backend": repo.backend}
        if profile is not None:
            # Said out loud so a lab baseline can never pass for production unnoticed.
            detail["query_profile"] = profile
        return "ok", detail

    async def cache_check() -> tuple[str, dict[str, Any]]:
        if not settings.cache_enabled:
            return "ok", {"mode": "disabled"}
        kind = "redis" if settings.redis_url else "memory"
        # Without the cache every read goes to the backend: slower, still correct, so degraded.
        return ("ok" if await store.ping() else "degraded"), {"store": kind}

    async def ai_upstream() -> tuple[str, dict[str, Any]]:
        if recommender is None:
            return "ok", {"mode": "fallback only (no OPENAI_API_KEY)"}
        state = breaker.status().state
        # An open breaker degrades one feature; the fallback still answers, so stay ready.
        return ("degraded" if state != "closed" else "ok"), {"breaker": state}

    readiness: dict[str, ReadinessCheck] = {
        "database": database,
        "cache": cache_check,
        "ai": ai_upstream,
    }
    if limiter is not None and settings.rate_limit_enabled:

        async def rate_limit() -> tuple[str, dict[str, Any]]:
            if await limiter.storage_ready():
                return "ok", {"fail_open": settings.rate_limit_fail_open}
            # Failing closed, every limited request now gets 503: not ready, whatever else is.
            state = "degraded" if settings.rate_limit_fail_open else "down"
            return state, {"fail_open": settings.rate_limit_fail_open}

        readiness["rate_limit"] = rate_limit
    if metrics is not None:
        # /readyz and every scrape set readiness_check_state (alerts need no poller of /readyz).
        readiness = metrics.record_readiness(readiness, timeout_s=READINESS_TIMEOUT_S)

    return AppContext(
        settings=settings,
        repo=repo,
        clock=clock,
        staff_keys=settings.staff_keys(),
        admin_token=settings.admin_token.get_secret_value() if settings.admin_token else None,
        readiness=readiness,
        cache=cache,
        recommender=recommender,
        breakers=[breaker],
        encode=response_encoder(settings),
    )
