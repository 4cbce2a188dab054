"""Redis and PostgreSQL go away under a steady load of customers, then come back.

The service runs as in production: two uvicorn workers, PostgreSQL, Redis (cache and rate
limiter), the limiter on. The faults are injected into private instances started for the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.reliability.load import BackgroundLoad, open_shop
from tests.reliability.procs import Deploy, PrivatePostgres, metric_sum, wait_until
from tests.reliability.table import Summary

OUTAGE_S = 3.0


def hold_until(load: BackgroundLoad, moment: float) -> None:
    # Let the load run on until `moment` (seconds since it started).
    time.sleep(max(0.0, moment - load.now()))


def readiness(url: str) -> httpx.Response:
    # A fresh connection each time, so successive checks reach either worker.
    return httpx.get(f"{url}/readyz", timeout=5)


def every_worker_says(
    url: str, predicate: Callable[[httpx.Response], bool], polls: int = 12
) -> bool:
    """True when `polls` consecutive fresh-connection readiness checks all satisfy `predicate`:
    with two workers behind one port, 12 in a row miss one worker with odds of 1 in 4096."""
    return all(predicate(readiness(url)) for _ in range(polls))


@pytest.mark.timeout(90)
def test_orders_keep_succeeding_while_redis_is_killed_and_cache_and_limiter_recover_alone(
    deploy: Deploy, summary: Summary
) -> None:
    row = summary(
        "Redis killed mid-run",
        done="2 workers on PostgreSQL under load; kill -9 Redis, start it again "
        f"{OUTAGE_S:.0f} s later (empty)",
    )
    deployment = deploy()
    service, redis = deployment.service, deployment.redis
    shop = open_shop(service.url)
    with BackgroundLoad(service.url, shop, max_seconds=45) as load:
        load.wait_for_requests(300)
        assert metric_sum(service.metrics(), "cache_requests_total", result="hit") > 0
        limited = httpx.get(f"{service.url}/v1/stores")
        assert "ratelimit" in limited.headers  # the shared limiter is counting

        killed_at = load.now()
        redis.kill()
        load.wait_for_requests(500)
        hold_until(load, killed_at + OUTAGE_S)
        during = readiness(service.url)
        assert during.status_code == 200
        assert during.json()["checks"]["cache"]["status"] == "degraded"
        uncounted = httpx.get(f"{service.url}/v1/stores")
        # Failing open: served, and no made-up budget is advertised while nothing counts.
        assert uncounted.status_code == 200 and "ratelimit" not in uncounted.headers

        redis.start()  # the same port, empty: every cache entry and counter is gone
        back_at = load.now()
        wait_until(
            lambda: every_worker_says(
                service.url, lambda r: r.json()["checks"]["cache"]["status"] == "ok"
            ),
            timeout=15,
            what="/readyz did not report the cache ok again",
        )
        recovered_at = load.now()
        hits_then = metric_sum(service.metrics(), "cache_requests_total", result="hit")
        load.wait_for_requests(500)
        hits_now = metric_sum(service.metrics(), "cache_requests_total", result="hit")
        counted_again = httpx.get(f"{service.url}/v1/stores")
    outcomes = load.outcomes
    failures = load.failures(outcomes)
    failed_orders = [o for o in load.orders if not o.acknowledged]
    row.add(requests=len(outcomes), failures=len(failures))
    row.held = (
        f"{len(load.acknowledged())} orders, 0 failed; {len(failures)} errors in "
        f"{len(outcomes)} ({len(load.between(killed_at, back_at))} during the outage); "
        f"cache ok again {recovered_at - back_at:.1f} s after Redis; hits resumed "
        f"(+{hits_now - hits_then:.0f}); limiter counting again"
    )
    assert failed_orders == [], [o.attempts for o in failed_orders][:5]
    assert len(failures) <= len(outcomes) / 1000, load.by_status(failures)
    assert len(load.between(killed_at, back_at)) >= 300  # the outage really was under load
    assert hits_now > hits_then, "cache hits did not resume after Redis came back"
    assert "ratelimit" in counted_again.headers, "the limiter did not count again"


@pytest.mark.timeout(120)
def test_a_postgres_restart_answers_503_meanwhile_and_loses_no_acknowledged_order(
    deploy: Deploy, private_postgres: PrivatePostgres, summary: Summary
) -> None:
    row = summary(
        "PostgreSQL restarted mid-run",
        done=f"2 workers under load; stop PostgreSQL (fast), start it {OUTAGE_S:.0f} s later; "
        "clients retry refused orders with their Idempotency-Key",
    )
    deployment = deploy(DB_POOL_MAX=5)
    service, dsn = deployment.service, deployment.dsn
    restarted = True
    try:
        shop = open_shop(service.url)
        with BackgroundLoad(service.url, shop, max_seconds=60, retry_orders=True) as load:
            load.wait_for_requests(300)
            processes = service.tree()

            stopped_at = load.now()
            restarted = False
            private_postgres.stop("fast")
            wait_until(
                lambda: readiness(service.url).status_code == 503,
                timeout=10,
                what="/readyz did not turn 503 with the database down",
            )
            refused = readiness(service.url).json()
            hold_until(load, stopped_at + OUTAGE_S)
            private_postgres.start()
            restarted = True
            back_at = load.now()
            wait_until(
                lambda: every_worker_says(service.url, lambda r: r.status_code == 200),
                timeout=20,
                what="/readyz did not turn 200 again after the database came back",
            )
            recovered_at = load.now()
            load.wait_for_requests(300)
        assert service.tree() == processes, "a worker was restarted; the pool should heal alone"
    finally:
        if not restarted:
            private_postgres.start()

    outcomes = load.outcomes
    refusals = [o for o in outcomes if o.status == 503]
    broken = [
        o
        for o in load.failures(outcomes)
        if o.status != 503
        or o.error != "service_unavailable"
        or b"asyncpg" in o.body
        or b"SELECT" in o.body
        or b"connection" in o.body.lower()
    ]
    acknowledged = load.acknowledged()
    lost = [o for o in load.orders if not o.acknowledged]
    stored = private_postgres.fetch(
        dsn,
        "SELECT o.id::text AS id, k.key FROM orders o "
        "LEFT JOIN idempotency_keys k ON k.order_id = o.id WHERE o.store_id = $1::uuid",
        shop.store_id,
    )
    stored_ids = {r["id"] for r in stored}
    missing = [o.order_id for o in acknowledged if o.order_id not in stored_ids]
    row.add(requests=len(outcomes), failures=len(broken) + len(lost) + len(missing))
    row.held = (
        f"/readyz 503 {refused.get('failed')} then 200 {recovered_at - back_at:.1f} s after the "
        f"restart, same worker pids; {len(refusals)} answers 503 "
        f"({len(load.between(stopped_at, recovered_at))} requests in the outage), 0 x 500; "
        f"{len(acknowledged)} orders acknowledged, all {len(stored_ids)} in the database, "
        f"one per Idempotency-Key"
    )
    assert refused["failed"] == ["database"]
    assert broken == [], load.by_status(broken)
    assert refusals, "no request met the outage"
    assert lost == [], f"{len(lost)} orders never acknowledged despite retries"
    assert missing == [], f"acknowledged orders missing from the database: {missing[:5]}"
    # Retries replayed, never duplicated: exactly one stored order per key, none without one.
    assert sorted(r["key"] for r in stored) == sorted(o.key for o in acknowledged)
    assert len(stored_ids) == len({o.order_id for o in acknowledged}) == len(acknowledged)
