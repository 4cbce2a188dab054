"""The reliability suite's view of the harness (harness/): the service configured as in
production, and private, killable PostgreSQL and Redis. Faults are injected into private
instances only; shared servers are never touched."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import procs
from harness.metrics import sample_sum as metric_sum
from harness.postgres import PrivatePostgres
from harness.procs import BIN, PICKUP, FakeOpenAI, base_env, free_port, port_open, wait_until
from harness.redis import RedisServer as PrivateRedis

if TYPE_CHECKING:
    from tests.reliability.load import Shop

__all__ = [
    "BIN",
    "PICKUP",
    "FakeOpenAI",
    "PrivatePostgres",
    "PrivateRedis",
    "base_env",
    "free_port",
    "metric_sum",
    "port_open",
    "wait_until",
]

STAFF_KEY = "reliability-staff-key-0000000001"
ADMIN_TOKEN = "reliability-admin-token-00000001"
METRICS_TOKEN = "reliability-metrics-token-000001"
STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}
BODY_TIMEOUT_S = 1.0  # REQUEST_BODY_TIMEOUT_S of the production-shaped service
# The shared `production` service's settings beyond the deployed defaults; a test that changes
# data other tests read (the fuzz run) deploys a service of its own with the same ones.
PRODUCTION_SETTINGS: dict[str, Any] = {
    "REQUEST_BODY_TIMEOUT_S": BODY_TIMEOUT_S,
    "PICKUP_CODE_ATTEMPTS_MAX": 10_000_000,
}


def production_env(workdir: Path, **settings: Any) -> dict[str, str]:
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    return base_env(
        **{
            "APP_ENV": "production",
            "HOST": "127.0.0.1",
            "STAFF_API_KEYS": STAFF_KEY,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "METRICS_TOKEN": METRICS_TOKEN,
            "OPENAI_API_KEY": "sk-reliability-not-a-real-key",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # discard port: AI tests override it
            "JSON_DATA_PATH": workdir / "pickup.json",
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
            "SEED_DEMO_DATA": "false",
            "ACCESS_LOG": "false",
            "LOG_LEVEL": "warning",
            # One client (this test) sends everything: the limiter stays on, its budget huge.
            "RATE_LIMIT_MAX": 10_000_000,
            "RATE_LIMIT_ORDERS_MAX": 10_000_000,
            "RATE_LIMIT_AI_MAX": 10_000_000,
            "MAX_LIVE_ORDERS_PER_PHONE": 0,  # one phone places all of the load's orders
            "SHUTDOWN_GRACE_S": 3,
            **settings,
        }
    )


class Service(procs.Service):
    """`pickup serve` configured as in production, its working directory private."""

    def __init__(self, workdir: Path, *, port: int | None = None, **settings: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(production_env(workdir, **settings), workdir, port=port)

    def start(self, timeout: float = 90.0) -> Service:  # cold starts on a busy 2-core host
        super().start(timeout)
        return self


@dataclass(frozen=True)
class Production:
    """The service as deployed: two workers, PostgreSQL, Redis, limiter on, AI configured, and a
    shop (store, menu item, slots) to order from."""

    service: Service
    dsn: str
    shop: Shop


@dataclass(frozen=True)
class Deployment:
    """A service on a database of its own in the private cluster and on a Redis of its own."""

    service: Service
    dsn: str
    redis: PrivateRedis


@contextmanager
def deployed(home: Path, postgres: PrivatePostgres, **settings: Any) -> Iterator[Deployment]:
    """The service as deployed: two workers on PostgreSQL and one Redis (cache and limiter) for
    both, plus `settings`. The service stops before its Redis goes."""
    dsn = postgres.create_database()
    with (
        PrivateRedis(home) as redis,
        Service(
            home / "service",
            WEB_CONCURRENCY=2,
            DATA_BACKEND="postgres",
            DATABASE_URL=dsn,
            REDIS_URL=redis.url,
            **settings,
        ) as service,
    ):
        yield Deployment(service, dsn, redis)


Deploy = Callable[..., Deployment]  # the `deploy` fixture: deploy(**settings)
