"""What a deployment relies on, exercised without a Docker engine: the image's exact start
command in a production-like environment, the platform config, and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from tests.e2e.server import PICKUP, Server, base_env, free_port
from tests.e2e.test_serve import first_bookable_slot, order
from tests.factories import ADMIN_TOKEN, STAFF_KEY

ROOT = Path(__file__).resolve().parents[2]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def image_env() -> dict[str, str]:
    text = re.sub(r"\\\n\s*", " ", dockerfile()).split("FROM")[-1]  # the runtime stage
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                found[key] = value
    return found


def image_command() -> list[str]:
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile(), flags=re.M)
    return list(json.loads(cmd))


def production_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in image_env().items() if k != "PATH"}
    env.update(
        JSON_DATA_PATH=str(tmp_path / "pickup.json"),
        PORT=str(free_port()),
        DATA_BACKEND="json",
        STAFF_API_KEYS=STAFF_KEY,
        # Production's secrets policy: random-looking, distinct, /metrics not anonymous.
        ADMIN_TOKEN="7f1c9e2ab85d4036be91c4d7a20f8e63",
        METRICS_TOKEN="Hq4vN8sLw2pXk7RtZ3mB",
        OPENAI_API_KEY="sk-test-not-used-0001",
        **values,
    )
    return base_env(**env)


def test_the_image_runs_as_an_unprivileged_user_with_a_healthcheck() -> None:
    text = dockerfile()
    assert re.search(r"^USER 10001", text, flags=re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "uv sync --locked --no-default-groups" in text  # the lock, without dev or lab groups
    assert image_env()["APP_ENV"] == "production"


def test_the_image_start_command_serves_health_and_readiness(tmp_path: Path) -> None:
    assert image_command() == ["pickup", "serve"]
    env = production_env(tmp_path)
    with Server(env, cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert "strict-transport-security" in ready.headers  # production headers


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(Path(PICKUP).with_name("hadolint")), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_railway_config_deploys_the_dockerfile_safely() -> None:
    config = json.loads((ROOT / "railway.json").read_text())
    assert config["build"] == {
        **config["build"],
        "builder": "DOCKERFILE",
        "dockerfilePath": "Dockerfile",
    }
    deploy = config["deploy"]
    assert deploy["startCommand"] == " ".join(image_command())
    assert deploy["healthcheckPath"] == "/healthz"
    assert isinstance(deploy["healthcheckTimeout"], int) and deploy["healthcheckTimeout"] > 0
    assert (
        deploy["restartPolicyType"] == "ON_FAILURE" and 0 < deploy["restartPolicyMaxRetries"] <= 10
    )
    assert deploy["preDeployCommand"] == ["pickup db migrate"]
    # Railway must wait longer than our own grace period before it kills the old deployment.
    grace = Settings.model_fields["shutdown_grace_s"].default
    assert isinstance(deploy["drainingSeconds"], int) and deploy["drainingSeconds"] > grace


@pytest.mark.timeout(60)
def test_sigterm_lets_in_flight_requests_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    fake_port = free_port()
    fake = subprocess.Popen(
        [PICKUP, "fake-openai", "--port", str(fake_port), "--latency-ms", "1500"], env=base_env()
    )
    try:
        env = base_env(
            APP_ENV="test",
            JSON_DATA_PATH=str(tmp_path / "pickup.json"),
            STAFF_API_KEYS=STAFF_KEY,
            ADMIN_TOKEN=ADMIN_TOKEN,
            RATE_LIMIT_ENABLED="false",
            OPENAI_API_KEY="sk-test-slow-0001",
            OPENAI_BASE_URL=f"http://127.0.0.1:{fake_port}/v1",
            OPENAI_TIMEOUT_MS="10000",
        )
        server = Server(env, cwd=tmp_path).start()
        store_id = httpx.get(f"{server.url}/v1/stores").json()["items"][0]["id"]
        url = f"{server.url}/v1/stores/{store_id}/recommendations"

        async def scenario() -> tuple[list[httpx.Response], bool]:
            async with httpx.AsyncClient(timeout=20) as client:
                in_flight = [
                    asyncio.create_task(client.post(url, json={"preferences": "coffee"}))
                    for _ in range(5)
                ]
                await asyncio.sleep(0.5)  # all five are now waiting on the slow upstream
                assert server.process is not None
                server.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                with socket.socket() as sock:
                    refused = sock.connect_ex(("127.0.0.1", server.port)) != 0
                return list(await asyncio.gather(*in_flight)), refused

        responses, refused_new = asyncio.run(scenario())
        assert [r.status_code for r in responses] == [200] * 5
        assert {r.json()["source"] for r in responses} == {"openai"}  # not cut short
        assert refused_new
        # It exits by itself; uvicorn re-raises SIGTERM after its graceful shutdown.
        assert server.process is not None and server.process.wait(20) in (0, -signal.SIGTERM)
    finally:
        fake.terminate()
        fake.wait(10)


def test_check_404_passes_on_a_live_server_and_lists_broken_links(tmp_path: Path) -> None:
    env = base_env(
        APP_ENV="test",
        JSON_DATA_PATH=str(tmp_path / "pickup.json"),
        STAFF_API_KEYS=STAFF_KEY,
        ADMIN_TOKEN=ADMIN_TOKEN,
        RATE_LIMIT_ENABLED="false",
    )
    with Server(env, cwd=tmp_path) as server:
        http = httpx.Client(base_url=server.url)
        store = http.get("/v1/stores?limit=1").json()["items"][0]
        item = next(
            i for i in http.get(f"/v1/stores/{store['id']}/menu").json()["items"] if i["available"]
        )
        http.post(
            "/v1/orders",
            json=order(store["id"], item["id"], first_bookable_slot(http, store["id"])),
        )
        docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        ok = subprocess.run(
            [
                PICKUP,
                "check-404",
                "--base-url",
                server.url,
                "--staff-key",
                STAFF_KEY,
                "--docs",
                *map(str, docs),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "skipped" not in ok.stdout and "0 answered 404" in ok.stdout
        broken = tmp_path / "broken.md"
        broken.write_text("See `GET /v1/stores/{store_id}/nothing` and `/v1/no-such-thing`.\n")
        bad = subprocess.run(
            [PICKUP, "check-404", "--base-url", server.url, "--docs", str(broken)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert bad.returncode == 1
        assert f"404 GET /v1/stores/{store['id']}/nothing" in bad.stdout
        assert "404 GET /v1/no-such-thing" in bad.stdout
