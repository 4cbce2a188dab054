"""A real `pickup serve` process on a free port, waited for: the harness's `Service`
(harness/procs.py), under the name these tests have always used."""

from __future__ import annotations

from pathlib import Path

from harness.procs import PICKUP, base_env, free_port
from harness.procs import Service as Server
from tests.factories import ADMIN_TOKEN, STAFF_KEY

__all__ = ["PICKUP", "Server", "base_env", "free_port", "json_env"]


def json_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """A test server on a JSON file in `tmp_path`, with the tests' staff key and admin token,
    no rate limit (tests make more requests than a customer would) and no per-phone cap (one
    phone places every order in these tests; the cap is not what they test)."""
    return base_env(
        APP_ENV="test",
        JSON_DATA_PATH=str(tmp_path / "pickup.json"),
        STAFF_API_KEYS=STAFF_KEY,
        ADMIN_TOKEN=ADMIN_TOKEN,
        **{"RATE_LIMIT_ENABLED": "false", "MAX_LIVE_ORDERS_PER_PHONE": "0", **values},
    )
