"""A real `pickup serve` process on a free port, waited for: the harness's `Service`
(harness/procs.py), under the name these tests have always used; the environments these tests
give it; and `pickup` commands run to their end."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.procs import PICKUP, base_env, free_port
from harness.procs import Service as Server
from tests.factories import ADMIN_TOKEN, STAFF_KEY

__all__ = [
    "PICKUP",
    "Server",
    "base_env",
    "free_port",
    "json_env",
    "pickup",
    "postgres_env",
    "server_env",
]


def server_env(**values: str) -> dict[str, str]:
    """A test server with the tests' staff key and admin token, no rate limit (tests make more
    requests than a customer would) and no per-phone cap (one phone places every order in these
    tests; the cap is not what they test)."""
    return base_env(
        APP_ENV="test",
        STAFF_API_KEYS=STAFF_KEY,
        ADMIN_TOKEN=ADMIN_TOKEN,
        **{"RATE_LIMIT_ENABLED": "false", "MAX_LIVE_ORDERS_PER_PHONE": "0", **values},
    )


def json_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """A test server (`server_env`) on a JSON file in `tmp_path`."""
    return server_env(**{"JSON_DATA_PATH": str(tmp_path / "pickup.json"), **values})


def postgres_env(dsn: str, **values: str) -> dict[str, str]:
    """A test server (`server_env`) on the PostgreSQL database `dsn`, with no demo data."""
    return server_env(
        **{"DATA_BACKEND": "postgres", "DATABASE_URL": dsn, "SEED_DEMO_DATA": "false", **values}
    )


def pickup(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """`pickup ARGS` run to its end in `cwd` with exactly `env`, its output captured."""
    return subprocess.run([PICKUP, *args], cwd=cwd, env=env, capture_output=True, timeout=timeout)
