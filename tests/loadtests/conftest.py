"""Real `pickup serve` processes (and the fake OpenAI) on free loopback ports, one per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loadtests.harness import BIN, RATE_LIMIT, STAFF_KEY, Background, clean_env, free_port


def serve(cwd: Path, **settings: str) -> Iterator[str]:
    port = free_port()
    env = clean_env(
        **{
            "APP_ENV": "test",
            "PORT": str(port),
            "STAFF_API_KEYS": STAFF_KEY,
            "ACCESS_LOG": "false",
            "LOG_LEVEL": "warning",
            "RATE_LIMIT_ENABLED": "false",
            **settings,
        }
    )
    server = Background([str(BIN / "pickup"), "serve"], cwd, env)
    server.start(f"http://127.0.0.1:{port}/healthz")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with its demo data (5 stores, 40 items each) and no rate limit."""
    yield from serve(tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="session")
def fake_openai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    args = [str(BIN / "pickup"), "fake-openai", "--port", str(port)]
    fake = Background(args, tmp_path_factory.mktemp("fake-openai"), clean_env())
    fake.start(f"http://127.0.0.1:{port}/_control")
    yield f"http://127.0.0.1:{port}"
    fake.stop()


@pytest.fixture(scope="session")
def ai_service(tmp_path_factory: pytest.TempPathFactory, fake_openai: str) -> Iterator[str]:
    """Calls the fake OpenAI with a short deadline, and a breaker that retries after 0.5 s."""
    yield from serve(
        tmp_path_factory.mktemp("ai-service"),
        OPENAI_API_KEY="sk-test-x",
        OPENAI_BASE_URL=f"{fake_openai}/v1",
        OPENAI_TIMEOUT_MS="300",
        BREAKER_FAIL_MAX="3",
        BREAKER_RESET_TIMEOUT_S="0.5",
    )


@pytest.fixture(scope="session")
def limited_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """RATE_LIMIT requests per client per hour; the client is the last X-Forwarded-For hop."""
    yield from serve(
        tmp_path_factory.mktemp("limited-service"),
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_MAX=str(RATE_LIMIT),
        RATE_LIMIT_WINDOW_MS="3600000",
        TRUST_PROXY="1",
    )


@pytest.fixture(scope="session")
def direct_limited_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """RATE_LIMIT requests per client per hour; no proxy trusted: the client is the peer."""
    yield from serve(
        tmp_path_factory.mktemp("direct-limited-service"),
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_MAX=str(RATE_LIMIT),
        RATE_LIMIT_WINDOW_MS="3600000",
        TRUST_PROXY="0",
    )
