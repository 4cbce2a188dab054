"""Every audit target, declared once: its goal text and its predicate come from one definition.

A target is judged on the 95 % interval (Student's t over rounds) of its per-round samples,
never on one number:

- `pass` when the whole interval meets the goal,
- `fail` when the whole interval misses it,
- `inconclusive` when the interval straddles the bound,
- `not_measured` when a tool or dependency was missing or the sample is empty (a check over
  zero responses or zero requests proves nothing, so it never passes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from labkit import stats

Verdict = Literal["pass", "fail", "inconclusive", "not_measured"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "inconclusive", "not_measured")
SYMBOL = {">=": "≥", "<=": "≤", "==": "="}


@dataclass(frozen=True)
class Check:
    id: str
    section: str
    title: str
    op: Literal[">=", "<=", "=="]
    bound: float
    unit: str
    # timed: repeated rounds whose spread matters; exact: a count that one run measures fully.
    kind: Literal["timed", "exact"] = "timed"
    how: str = ""

    @property
    def goal(self) -> str:
        if self.unit == "yes/no":
            return "yes" if self.bound else "no"
        sep = "" if self.unit in ("×", "%") else " "
        return f"{SYMBOL[self.op]} {self.bound:g}{sep}{self.unit}"

    @property
    def better(self) -> Literal["higher", "lower"] | None:
        """Which way an improvement moves the value (None for an exact-equality goal)."""
        return {">=": "higher", "<=": "lower", "==": None}[self.op]  # type: ignore[return-value]

    def meets(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.bound
        if self.op == "<=":
            return value <= self.bound
        return value == self.bound

    def judge(self, ci: tuple[float, float] | None) -> Verdict:
        if ci is None:
            return "not_measured"
        low, high = ci
        if self.meets(low) and self.meets(high):
            return "pass"
        if self.op == "==":
            return "fail" if not (low <= self.bound <= high) else "inconclusive"
        if not self.meets(low) and not self.meets(high):
            return "fail"
        return "inconclusive"


def evaluate(
    check: Check,
    samples: Sequence[float | None],
    *,
    reason: str | None = None,
    detail: str = "",
    command: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary entry of one target: samples, median, interval and verdict."""
    values = [] if reason else stats.clean(samples)
    if not values and not reason:
        reason = "empty sample: nothing was measured"
    ci = stats.interval(values)
    centre = stats.median(values)
    return {
        "id": check.id,
        "section": check.section,
        "title": check.title,
        "goal": check.goal,
        "unit": check.unit,
        "kind": check.kind,
        "better": check.better,
        "samples": [round(v, 6) for v in values],
        "median": None if centre is None else round(centre, 6),
        "ci95": None if ci is None else [round(ci[0], 6), round(ci[1], 6)],
        "half_width_share": stats.half_width_share(ci, centre),
        "verdict": check.judge(ci),
        "reason": reason,
        "detail": detail,
        "command": command,
        "how": check.how,
        **(extra or {}),
    }


def rate_percent(failures: int, requests: int) -> float | None:
    """An error rate in %, or None when nothing was sent (no rate, and so no verdict)."""
    return 100 * failures / requests if requests else None


def tally(targets: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for target in targets:
        counts[target["verdict"]] += 1
    return counts


def verdict_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(v, 0)} {v.replace('_', ' ')}" for v in VERDICTS)


def _c(*args: Any, **kwargs: Any) -> Check:
    return Check(*args, **kwargs)


CHECKS: dict[str, Check] = {
    c.id: c
    for c in [
        # compression
        _c(
            "gzip_bytes",
            "compression",
            "gzip: fewer bytes on JSON ≥ 1 KB (level 1, worst endpoint)",
            ">=",
            60,
            "%",
            "exact",
            "Content-Length with gzip against the plain body",
        ),
        _c(
            "gzip_small_untouched",
            "compression",
            "bodies < 1 KB sent compressed",
            "<=",
            0,
            "%",
            "exact",
            "share of the responses under 1 KB that came back gzipped",
        ),
        # cache
        *(
            _c(
                f"cache_{measure}_{cache}",
                "cache",
                f"{cache} cache: {what} on repeated reads",
                ">=",
                90,
                "%",
                "exact",
            )
            for cache in ("memory", "redis")
            for measure, what in [("db_hits", "fewer backend calls"), ("hit_ratio", "hit ratio")]
        ),
        _c(
            "redis_round_trips_per_hot_read",
            "cache",
            "Redis round trips per hot cached menu read (production, limiter on)",
            "<=",
            2,
            "round trips",
            "exact",
            "commands clients sent, by the server's MONITOR, over 50 reads (not those scripts ran)",
        ),
        _c(
            "hot_menu_vs_naive",
            "cache",
            "hot Redis-cached gzip menu vs the naive stack",
            ">=",
            3,
            "×",
            how="requests per server CPU-second, per round",
        ),
        _c(
            "hot_menu_vs_hello",
            "cache",
            "hot cached gzip menu (production, in-process cache) vs a bare Starlette hello",
            ">=",
            0.45,
            "×",
            how="requests per server CPU-second, per round",
        ),
        _c(
            "healthz_vs_hello",
            "cache",
            "/healthz through the production stack vs a bare Starlette hello",
            ">=",
            0.75,
            "×",
            how="requests per server CPU-second, per round",
        ),
        _c(
            "order_poll_304_vs_200",
            "cache",
            "order-status poll answered 304 (If-None-Match) vs in full (200), production",
            ">=",
            2,
            "×",
            how="requests per server CPU-second, per round; the 304 comes from the ETag kept "
            "for the order token, with no database read",
        ),
        # overall: the per-layer waterfall and the mixed scenario
        _c(
            "limiter_cost",
            "overall",
            "rate limiter's CPU per hot menu request",
            "<=",
            10,
            "µs",
            how="CPU µs/request with the limiter on minus off, per round, in one process "
            "(service/measure.py: the service's own protocol and app fed from memory)",
        ),
        _c(
            "access_log_cost",
            "overall",
            "access log line's CPU per hot menu request",
            "<=",
            6,
            "µs",
            how="CPU µs/request with the access log on minus off, per round, in one process "
            "(service/measure.py: the service's own protocol and app fed from memory)",
        ),
        _c(
            "idle_rss",
            "overall",
            "idle RSS of one production worker",
            "<=",
            60,
            "MiB",
            "exact",
            "VmRSS after start-up and one request",
        ),
        _c("mixed_p50", "overall", "mixed scenario p50, production vs naive", "<=", 0.5, "×"),
        _c(
            "mixed_rss",
            "overall",
            "peak RSS under the mixed load, production vs naive",
            "<=",
            0.7,
            "×",
        ),
        _c(
            "mixed_errors",
            "overall",
            "error rate under the mixed load (production)",
            "<=",
            0.1,
            "%",
        ),
        # queries
        _c(
            "db_time",
            "queries",
            "database time per request mix, optimized vs naive (cut)",
            ">=",
            50,
            "%",
        ),
        _c("queries_1m", "queries", "orders query, optimized vs naive at 1M orders", ">=", 10, "×"),
        _c(
            "cost_growth",
            "queries",
            "optimized orders-query cost growth over the log N bound (smallest to largest size)",
            "<=",
            1,
            "×",
        ),
        # resilience
        _c(
            "breaker_opens",
            "resilience",
            "the breaker opens while the upstream fails",
            "==",
            1,
            "yes/no",
            "exact",
        ),
        _c(
            "breaker_heals",
            "resilience",
            "the breaker is closed again after the upstream heals",
            "==",
            1,
            "yes/no",
            "exact",
        ),
        _c(
            "ai_errors",
            "resilience",
            "AI requests failed while the upstream was faulty",
            "<=",
            0.1,
            "%",
            "exact",
        ),
        _c(
            "redis_killed_errors",
            "resilience",
            "error rate with Redis killed and restarted mid-run",
            "<=",
            0.1,
            "%",
            "exact",
        ),
        _c(
            "redis_recovers",
            "resilience",
            "cache hits after Redis returns (of 20 reads)",
            ">=",
            95,
            "%",
            "exact",
        ),
        _c(
            "limiter_exact",
            "resilience",
            "requests allowed across two processes with a limit of 50",
            "==",
            50,
            "requests",
            "exact",
        ),
        # deploy (notebooks/labkit/deploy.py)
        _c(
            "deploy_availability",
            "deploy",
            "requests answered correctly through the proxy during deploy and rollback",
            ">=",
            99.9,
            "%",
            "exact",
            "Locust's customer mix through HAProxy, whole drill",
        ),
        _c(
            "deploy_failed_requests",
            "deploy",
            "failed requests during deploy and rollback",
            "<=",
            0,
            "requests",
            "exact",
            "Locust failures: wrong status or body, connection error",
        ),
        _c(
            "deploy_orders_lost",
            "deploy",
            "acknowledged orders missing from PostgreSQL after the drill",
            "==",
            0,
            "orders",
            "exact",
            "every 201 order id the load got, looked up in the database",
        ),
        _c(
            "deploy_time",
            "deploy",
            "deploy: start to new version serving through the proxy",
            "<=",
            300,
            "s",
            "timed",
            "fresh venv from the package cache, migrate, /readyz 200, switch",
        ),
        _c(
            "rollback_time",
            "deploy",
            "rollback: start to previous version serving through the proxy",
            "<=",
            120,
            "s",
            "timed",
            "kept environment verified, migrate, /readyz 200, switch",
        ),
        _c(
            "data_rollback_time",
            "deploy",
            "data rollback PostgreSQL → JSON: export to JSON backend serving",
            "<=",
            120,
            "s",
            "timed",
            "pickup data export, pickup data import, restart on DATA_BACKEND=json",
        ),
        _c(
            "data_rollback_orders_lost",
            "deploy",
            "acknowledged orders missing after the data rollback",
            "==",
            0,
            "orders",
            "exact",
            "GET /v1/orders/{id} with its order token, through the proxy",
        ),
        _c(
            "env_consistency",
            "deploy",
            "settings keys consistent across local, Railway, Railway + Neon + Upstash",
            "==",
            100,
            "%",
            "exact",
            "pickup config check per column of DEPLOY.md's example table",
        ),
    ]
}


def check(id: str) -> Check:
    return CHECKS[id]
