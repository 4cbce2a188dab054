"""A first deploy that says what is wrong: a dependency that fails at start is ONE log event
(`startup_failed`, naming the dependency, the likely cause and the fix), no traceback, exit 3,
and the port is never bound. A permanent Redis misconfiguration (wrong password, untrusted
certificate) stops a production start instead of leaving it silently degraded."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from harness.postgres import postgres
from harness.redis import RedisServer, redis_unavailable
from tests.e2e.server import Server, base_env, free_port, pickup

EXIT_DEPENDENCY = 3


def production_env(tmp_path: Path, **values: str) -> dict[str, str]:
    settings = {
        "APP_ENV": "production",
        "PORT": str(free_port()),
        "DATA_BACKEND": "json",
        "JSON_DATA_PATH": str(tmp_path / "pickup.json"),
        # Random-looking, as production's secret policy wants.
        "STAFF_API_KEYS": "9f2c7e1a4b8d3f60a5c2e7b19d4f8a36",
        "ADMIN_TOKEN": "c41e8b7a2f9d06e35b1a7c4d8e2f9b60",
        "OPENAI_API_KEY": "sk-test-0123456789abcdef",
        "METRICS_TOKEN": "7d3b9e1f5a2c8e4b6f0a9d2c7e5b1f38",
    }
    return base_env(**{**settings, **values})


def start(env: dict[str, str], cwd: Path) -> tuple[int, str, list[dict[str, Any]]]:
    result = pickup("serve", env=env, cwd=cwd, timeout=90)
    output = (result.stdout + result.stderr).decode()
    events = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    with socket.socket() as sock:  # the port was never bound
        sock.bind(("127.0.0.1", int(env["PORT"])))
    return result.returncode, output, events


def the_failure(events: list[dict[str, Any]]) -> dict[str, Any]:
    failures = [e for e in events if e["event"] == "startup_failed"]
    assert len(failures) == 1, events
    failure = failures[0]
    assert failure["level"] == "error" and failure["message"] == "startup_failed"
    assert failure["likely_cause"] and failure["fix"]
    return failure


def test_a_missing_database_is_one_event_naming_cause_and_fix(tmp_path: Path) -> None:
    admin = postgres().admin_dsn.rsplit("/", 1)[0]
    code, output, events = start(
        production_env(
            tmp_path, DATA_BACKEND="postgres", DATABASE_URL=f"{admin}/pickup_no_such_database"
        ),
        tmp_path,
    )
    assert code == EXIT_DEPENDENCY
    assert "Traceback" not in output
    failure = the_failure(events)
    assert failure["dependency"] == "postgres"
    assert "does not exist" in failure["likely_cause"]


def test_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    server = postgres()
    dsn = server.create_database("pickup_e2e_empty", migrated=False)
    try:
        code, output, events = start(
            production_env(tmp_path, DATA_BACKEND="postgres", DATABASE_URL=dsn), tmp_path
        )
    finally:
        server.drop_database(dsn)
    assert code == EXIT_DEPENDENCY and "Traceback" not in output
    assert "pickup db migrate" in the_failure(events)["fix"]


@pytest.mark.skipif(redis_unavailable() is not None, reason=str(redis_unavailable()))
def test_a_wrong_redis_password_stops_a_production_start(tmp_path: Path) -> None:
    with RedisServer(tmp_path, "--requirepass", "the-right-password-123") as redis:
        wrong = redis.url.replace("redis://", "redis://:a-wrong-password-456@")
        code, output, events = start(production_env(tmp_path, REDIS_URL=wrong), tmp_path)
    assert code == EXIT_DEPENDENCY and "Traceback" not in output
    failure = the_failure(events)
    assert failure["dependency"] == "redis" and "password" in failure["likely_cause"]
    assert "a-wrong-password-456" not in output


@pytest.mark.skipif(redis_unavailable() is not None, reason=str(redis_unavailable()))
def test_an_untrusted_redis_certificate_stops_a_production_start(
    tmp_path: Path, make_certificate: Callable[[str], tuple[Path, Path]]
) -> None:
    with RedisServer(tmp_path, tls=make_certificate("IP:127.0.0.1")) as redis:
        code, output, events = start(production_env(tmp_path, REDIS_URL=redis.url), tmp_path)
    assert code == EXIT_DEPENDENCY and "Traceback" not in output
    failure = the_failure(events)
    assert failure["dependency"] == "redis" and "certificate" in failure["likely_cause"]


@pytest.mark.parametrize(
    ("fail_open", "status", "state"), [("false", 503, "down"), ("true", 200, "degraded")]
)
def test_readiness_includes_the_rate_limiter_storage(
    tmp_path: Path, fail_open: str, status: int, state: str
) -> None:
    # Redis unreachable (a closed port): with RATE_LIMIT_FAIL_OPEN=false every limited call is
    # refused, so /readyz must not say 200; failing open, requests go through uncounted.
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    env = base_env(
        APP_ENV="test",
        JSON_DATA_PATH=str(tmp_path / "pickup.json"),
        REDIS_URL=dead_redis,
        RATE_LIMIT_FAIL_OPEN=fail_open,
        SEED_DEMO_DATA="false",
    )
    with Server(env, cwd=tmp_path) as server:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        api = httpx.get(f"{server.url}/v1/stores", timeout=10)
    assert ready.status_code == status, ready.text
    assert ready.json()["checks"]["rate_limit"]["status"] == state
    assert api.status_code == status
