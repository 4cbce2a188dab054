"""Real `pickup serve` processes (and the fake OpenAI) on free loopback ports, one per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.procs import FakeOpenAI, Service
from tests.loadtests.harness import RATE_LIMIT, STAFF_KEY, clean_env


def serve(cwd: Path, **settings: str) -> Iterator[str]:
    defaults = {
        "APP_ENV": "test",
        "STAFF_API_KEYS": STAFF_KEY,
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "warning",
        "RATE_LIMIT_ENABLED": "false",
    }
    env = clean_env(**{**defaults, **settings})
    with Service(env, cwd) as server:
        yield server.url


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with its demo data (5 stores, 40 items each) and no rate limit."""
    yield from serve(tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="session")
def fake_openai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with FakeOpenAI(tmp_path_factory.mktemp("fake-openai")) as fake:
        yield fake.url


@pytest.fixture(scope="session")
def ai_service(tmp_path_factory: pytest.TempPathFactory, fake_openai: str) -> Iterator[str]:
    """Calls the fake OpenAI with a short deadline, and a breaker that retries after 0.5 s."""
    for url in serve(
        tmp_path_factory.mktemp("ai-service"),
        OPENAI_API_KEY="sk-test-x",
        OPENAI_BASE_URL=f"{fake_openai}/v1",
        OPENAI_TIMEOUT_MS="300",
        BREAKER_FAIL_MAX="3",
        BREAKER_RESET_TIMEOUT_S="0.5",
    ):
        # The first recommendation loads the openai SDK (lazily, to keep idle workers small).
        # One call before the scenario starts keeps that load out of its one-second phases,
        # which are about the breaker, not start-up.
        store_id = httpx.get(f"{url}/v1/stores?limit=1").json()["items"][0]["id"]
        warm = httpx.post(
            f"{url}/v1/stores/{store_id}/recommendations", json={"preferences": "tea"}, timeout=30
        )
        assert warm.status_code == 200, warm.text
        yield url


def limited(cwd: Path, trust_proxy: str) -> Iterator[str]:
    """RATE_LIMIT requests per client per hour, behind `trust_proxy` trusted proxy hops."""
    yield from serve(
        cwd,
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_MAX=str(RATE_LIMIT),
        RATE_LIMIT_WINDOW_MS="3600000",
        TRUST_PROXY=trust_proxy,
    )


@pytest.fixture(scope="session")
def limited_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The client is the last X-Forwarded-For hop."""
    yield from limited(tmp_path_factory.mktemp("limited-service"), "1")


@pytest.fixture(scope="session")
def direct_limited_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """No proxy trusted: the client is the peer."""
    yield from limited(tmp_path_factory.mktemp("direct-limited-service"), "0")
