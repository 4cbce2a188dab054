"""The OpenAI SDK is ~40 MiB per worker: it must load on the first recommendation, not at
start-up, or every idle worker pays for a feature most of them never call. Likewise pybreaker
(which imports redis-py and tornado when installed, ~11 MiB) loads with the first call through
the breaker, and redis-py not at all without REDIS_URL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = textwrap.dedent(
    """
    import sys

    from starlette.testclient import TestClient

    from service.app import create_app
    from service.config import load_settings

    settings = load_settings({{
        "APP_ENV": "test",
        "JSON_DATA_PATH": {data!r},
        "STAFF_API_KEYS": "test-staff-key-0000000000001",
        "ADMIN_TOKEN": "test-admin-token-000000000001",
        "OPENAI_API_KEY": "sk-test-do-not-leak-0123456789",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_TIMEOUT_MS": "500",
    }})
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code in (200, 503)
        store = client.get("/v1/stores").json()["items"][0]["id"]
        assert client.get(f"/v1/stores/{{store}}/menu").status_code == 200
        print("after-start", *(m in sys.modules for m in ("openai", "pybreaker", "redis")))
        answer = client.post(
            f"/v1/stores/{{store}}/recommendations", json={{"preferences": "soup"}}
        )
        loaded = [m in sys.modules for m in ("openai", "pybreaker")]
        print("after-call", answer.status_code, *loaded)
    """
)


def test_openai_sdk_and_breaker_load_on_first_recommendation_not_at_start_up(
    tmp_path: Path,
) -> None:
    program = PROGRAM.format(data=str(tmp_path / "pickup.json"))
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert lines["after-start"] == "False False False"  # openai, pybreaker, redis
    # The upstream is unreachable, so the call falls back, but it did go through the SDK.
    status, sdk, breaker = lines["after-call"].split()
    assert status == "200"
    assert (sdk, breaker) == ("True", "True")
