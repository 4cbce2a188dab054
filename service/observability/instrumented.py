"""Counts and times every repository call: the lab's "database hits" come from here."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

from service.observability.metrics import Metrics
from service.ports import PickupRepository

# Housekeeping, not queries: counting them would blur "hits per request".
NOT_QUERIES = frozenset({"ping", "aclose", "pool_stats"})


class InstrumentedRepository:
    def __init__(self, inner: PickupRepository, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.backend = inner.backend

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in NOT_QUERIES or not inspect.iscoroutinefunction(attr):
            return attr
        method = cast(Callable[..., Awaitable[Any]], attr)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            with self._metrics.db_query(self.backend, name):
                return await method(*args, **kwargs)

        # Cache the wrapper so the hot path does not rebuild it on every call.
        setattr(self, name, timed)
        return timed


def instrument(repo: PickupRepository, metrics: Metrics) -> PickupRepository:
    return cast(PickupRepository, InstrumentedRepository(repo, metrics))
