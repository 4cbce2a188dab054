"""Prometheus metrics: one `Metrics` object per process owns every metric and its exposition.

Multiprocess mode (several workers behind one port) follows prometheus-client's design: each
worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR and `render` merges all files. The
library picks its storage when it is first imported, from the environment, so the variable must
be set before the process starts; passing the directory here only confirms that it was.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

from service.errors import ConfigError

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Any other method becomes "OTHER", so a client inventing verbs cannot grow the label set.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Prometheus' convention for an enum: one series per state, 1 for the current one, 0 otherwise,
# so `circuit_breaker_state{state="open"} == 1` needs no decoding table.
BREAKER_STATES = ("closed", "half_open", "open")
READINESS_STATES = ("ok", "degraded", "down")

# In multiprocess mode other workers' sampled gauges are only as fresh as their last refresh,
# which request handling triggers at most this often.
_SAMPLE_INTERVAL_S = 1.0

PoolStats = Callable[[], Mapping[str, float]]
ReadinessCheck = Callable[[], Awaitable[tuple[str, dict[str, Any]]]]


class _Declared(NamedTuple):
    attribute: str
    kind: type[Counter | Gauge | Histogram]
    name: str
    documentation: str
    labels: tuple[str, ...]
    options: dict[str, Any]


# Every metric but the per-worker RSS gauge.
_DECLARED = (
    _Declared(
        "_http_requests",
        Counter,
        "http_requests",
        "HTTP requests served.",
        ("method", "route", "status"),
        {},
    ),
    _Declared(
        "_http_duration",
        Histogram,
        "http_request_duration_seconds",
        "Time from request start to last response byte.",
        ("method", "route"),
        {"buckets": HTTP_BUCKETS},
    ),
    _Declared(
        "_cache_requests",
        Counter,
        "cache_requests",
        "Read-through cache lookups by outcome.",
        ("cache", "result"),
        {},
    ),
    _Declared(
        "_cache_store_errors",
        Counter,
        "cache_store_errors",
        "Cache backend operations that failed and fell back.",
        ("backend", "operation"),
        {},
    ),
    _Declared(
        "_db_queries",
        Counter,
        "db_queries",
        "Repository operations run (one may send several SQL statements).",
        ("backend", "query"),
        {},
    ),
    _Declared(
        "_db_statements",
        Counter,
        "db_statements",
        "SQL statements the database server executed for us, counted by the driver "
        "(an N+1 read shows here, and so do the pool's reset on release and the driver's type "
        "introspection; COPY batches of an import do not).",
        ("backend",),
        {},
    ),
    _Declared(
        "_db_duration",
        Histogram,
        "db_query_duration_seconds",
        "Database query time.",
        ("backend", "query"),
        {"buckets": DB_BUCKETS},
    ),
    _Declared(
        "_db_pool",
        Gauge,
        "db_pool_connections",
        "Database pool connections by state, summed over workers.",
        ("state",),
        {"multiprocess_mode": "livesum"},
    ),
    _Declared(
        "_breaker_state",
        Gauge,
        "circuit_breaker_state",
        "1 for the breaker's current state, 0 for the others; across workers, 1 if any is in "
        "that state.",
        ("name", "state"),
        {"multiprocess_mode": "livemax"},
    ),
    _Declared(
        "_readiness",
        Gauge,
        "readiness_check_state",
        "1 for each /readyz check's last result (ok, degraded, down), 0 for the others; "
        "refreshed by /readyz and by every scrape.",
        ("check", "state"),
        {"multiprocess_mode": "livemostrecent"},
    ),
    _Declared(
        "_build_info",
        Gauge,
        "pickup_build_info",
        "Always 1; the labels say which version and commit is running.",
        ("version", "commit"),
        {"multiprocess_mode": "livemax"},
    ),
    _Declared(
        "_rate_limit_storage_errors",
        Counter,
        "rate_limit_storage_errors",
        "Rate-limit storage calls that failed.",
        (),
        {},
    ),
)


class Metrics:
    _http_requests: Counter
    _http_duration: Histogram
    _cache_requests: Counter
    _cache_store_errors: Counter
    _db_queries: Counter
    _db_statements: Counter
    _db_duration: Histogram
    _db_pool: Gauge
    _breaker_state: Gauge
    _readiness: Gauge
    _build_info: Gauge
    _rate_limit_storage_errors: Counter

    def __init__(self, *, multiprocess_dir: str | os.PathLike[str] | None = None) -> None:
        self.multiprocess_dir = None if multiprocess_dir is None else Path(multiprocess_dir)
        # `_created` series (one per counter and histogram child) carry a start timestamp no
        # query here uses; they only double the exposition. The switch is process-wide.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        if self.multiprocess_dir is None:
            ProcessCollector(registry=self.registry)
            owner: CollectorRegistry | None = self.registry
        else:
            if not self.multiprocess_dir.is_dir():
                raise ConfigError([f"metrics directory {self.multiprocess_dir} does not exist"])
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.registry, path=str(self.multiprocess_dir)
            )
            # Workers' values live in files; registering them here as well would expose this
            # worker's samples twice.
            owner = None

        for attr, kind, name, documentation, labels, options in _DECLARED:
            setattr(self, attr, kind(name, documentation, labels, registry=owner, **options))
        # Resolving labelled children costs more than updating them; on the request path we
        # resolve each (method, route, status) once.
        self._http_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        # prometheus-client's process collector only sees the scraping worker; in multiprocess
        # mode every worker reports its own resident memory, labelled by pid.
        self._rss: Gauge | None = None
        if self.multiprocess_dir is not None:
            self._rss = Gauge(
                "process_resident_memory_bytes",
                "Resident memory of each worker process.",
                multiprocess_mode="liveall",
                registry=owner,
            )
            _check_multiprocess_setup(self.multiprocess_dir)
        self._logger = structlog.get_logger(__name__)
        self._pool_stats: PoolStats | None = None
        self._scrape_hooks: list[Callable[[], Awaitable[None]]] = []
        self._cache_series: dict[tuple[str, str], Any] = {}
        self._next_sample_at = 0.0

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        method = method if method in _KNOWN_METHODS else "OTHER"
        series = self._http_series.get((method, route, status))
        if series is None:
            series = (
                self._http_requests.labels(method, route, str(status)),
                self._http_duration.labels(method, route),
            )
            self._http_series[(method, route, status)] = series
        requests, duration = series
        requests.inc()
        duration.observe(duration_s)
        if self.multiprocess_dir is not None:
            now = time.monotonic()
            if now >= self._next_sample_at:
                self._next_sample_at = now + _SAMPLE_INTERVAL_S
                self._sample()

    def cache_request(self, cache: str, result: Literal["hit", "miss", "error"]) -> None:
        # labels() takes a lock and hashes every call; this runs on every cache hit.
        child = self._cache_series.get((cache, result))
        if child is None:
            child = self._cache_series[(cache, result)] = self._cache_requests.labels(cache, result)
        child.inc()

    def cache_store_error(self, backend: str, operation: str) -> None:
        self._cache_store_errors.labels(backend, operation).inc()

    @contextmanager
    def db_query(self, backend: str, query: str) -> Iterator[None]:
        """Count and time the enclosed query; `query` must be a fixed name, never SQL text."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._db_queries.labels(backend, query).inc()
            self._db_duration.labels(backend, query).observe(time.perf_counter() - started)

    def db_statement(self, backend: str) -> None:
        """One SQL statement executed (called by the driver's query logger)."""
        self._db_statements.labels(backend).inc()

    def track_db_pool(self, stats: PoolStats) -> None:
        """Sample `stats()` (e.g. {"idle": 3, "in_use": 2}) whenever metrics are refreshed."""
        self._pool_stats = stats

    def set_circuit_state(self, name: str, state: str) -> None:
        current = state.replace("-", "_")
        if current not in BREAKER_STATES:
            raise ValueError(f"unknown breaker state {state!r}")
        for each in BREAKER_STATES:
            self._breaker_state.labels(name, each).set(1 if each == current else 0)

    def circuit_state_changed(self, name: str, old: str, new: str) -> None:
        """Shaped as a breaker state listener, for `breaker.add_listener`."""
        self.set_circuit_state(name, new)

    def set_build_info(self, version: str, commit: str) -> None:
        self._build_info.labels(version, commit).set(1)

    def record_readiness(
        self, checks: Mapping[str, ReadinessCheck], *, timeout_s: float
    ) -> dict[str, ReadinessCheck]:
        """Wrap /readyz's checks so each result sets `readiness_check_state`, and evaluate them on
        every scrape too (`refresh`), so an alert fires even when nobody polls /readyz."""
        recorded = {name: self._recording(name, check) for name, check in checks.items()}

        async def evaluate_all() -> None:
            await asyncio.gather(
                *(self._evaluate(name, check, timeout_s) for name, check in recorded.items())
            )

        self._scrape_hooks.append(evaluate_all)
        return recorded

    def set_readiness(self, check: str, state: str) -> None:
        for each in READINESS_STATES:
            self._readiness.labels(check, each).set(1 if each == state else 0)

    async def refresh(self) -> None:
        """Run what must be measured at scrape time and cannot be sampled synchronously."""
        for hook in self._scrape_hooks:
            await hook()

    def rate_limit_storage_error(self, _error: BaseException | None = None) -> None:
        """Shaped as the limiter's `on_storage_error` callback."""
        self._rate_limit_storage_errors.inc()

    def _recording(self, name: str, check: ReadinessCheck) -> ReadinessCheck:
        async def run() -> tuple[str, dict[str, Any]]:
            try:
                state, detail = await check()
            except BaseException:
                # A failed or timed-out (cancelled) check is what /readyz reports as down.
                self.set_readiness(name, "down")
                raise
            self.set_readiness(name, state)
            return state, detail

        return run

    async def _evaluate(self, name: str, check: ReadinessCheck, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(check(), timeout_s)
        except Exception as exc:
            # Recorded as down by the wrapper; the scrape itself must still succeed.
            self._logger.info(
                "readiness_check_failed_at_scrape",
                check=name,
                error_type=type(exc).__name__,
                error=str(exc),
            )

    def render(self) -> tuple[bytes, str]:
        self._sample()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def mark_process_dead(self, pid: int) -> None:
        """Drop a dead worker's live gauges; call it from the process manager's child-exit hook."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                pid, str(self.multiprocess_dir)
            )

    def _sample(self) -> None:
        if self._rss is not None:
            rss = _resident_memory_bytes()
            if rss is not None:
                self._rss.set(rss)
        if self._pool_stats is not None:
            try:
                stats = self._pool_stats()
            except Exception as exc:
                self._logger.warning(
                    "db_pool_stats_failed", error_type=type(exc).__name__, error=str(exc)
                )
                return
            for state, count in stats.items():
                self._db_pool.labels(state).set(count)


def _check_multiprocess_setup(directory: Path) -> None:
    # prometheus-client takes its directory from PROMETHEUS_MULTIPROC_DIR when first imported, and
    # the unlabelled counter above has already written this process's file there. Finding it in
    # `directory` proves the library writes where `render` will read.
    in_multiprocess_mode = getattr(values.ValueClass, "_multiprocess", False)
    if not (in_multiprocess_mode and any(directory.glob(f"*_{os.getpid()}.db"))):
        raise ConfigError(
            [
                f"prometheus-client is not writing to {directory}: PROMETHEUS_MULTIPROC_DIR must "
                "name this directory in the environment the process starts with (the library "
                "reads it once, when first imported)"
            ]
        )


def _resident_memory_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None  # not Linux: the gauge simply keeps its last value
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
