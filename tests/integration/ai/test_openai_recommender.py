from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from service.ai import AIBusyError, AICircuitOpenError, AIUnavailableError, OpenAIRecommender
from service.ai.fake_openai import create_fake_openai_app
from service.breaker import AsyncCircuitBreaker
from service.domain.errors import InvalidInputError

MENU: list[dict[str, Any]] = [
    {"id": "soup", "name": "Soup", "price_cents": 450, "category": "mains", "tags": ["veg"]},
    {"id": "tea", "name": "Tea", "price_cents": 200, "category": "drinks", "tags": []},
    {"id": "cake", "name": "Cake", "price_cents": 300, "category": "dessert", "tags": ["sweet"]},
    {"id": "stew", "name": "Stew", "price_cents": 900, "category": "mains", "tags": []},
]
API_KEY = "sk-test-do-not-leak-0123456789"
REQUEST: dict[str, Any] = {"preferences": "something light", "budget_cents": 700, "party_size": 2}

FAULTS = [
    pytest.param({"mode": "hang"}, {"APITimeoutError", "TimeoutError"}, id="timeout"),
    pytest.param({"mode": "error", "status_code": 500}, {"InternalServerError"}, id="500"),
    pytest.param({"mode": "error", "status_code": 503}, {"InternalServerError"}, id="503"),
    pytest.param({"mode": "error", "status_code": 429}, {"RateLimitError"}, id="429"),
    pytest.param({"mode": "error", "status_code": 401}, {"AuthenticationError"}, id="401"),
    pytest.param({"mode": "malformed"}, {"ValidationError"}, id="content-not-json"),
    pytest.param({"mode": "schema_break"}, {"ValidationError"}, id="schema-break"),
    pytest.param({"mode": "length"}, {"LengthFinishReasonError"}, id="length"),
    pytest.param({"mode": "bad_body"}, {"JSONDecodeError"}, id="body-not-json"),
]


class FakeUpstream:
    """Drives the fake over its real control endpoint, the way a load test does."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.base_url = f"{root}/v1"

    async def configure(self, **changes: Any) -> None:
        async with httpx.AsyncClient(base_url=self.root) as client:
            response = await client.post("/_control", json=changes)
            response.raise_for_status()

    async def requests_total(self) -> int:
        async with httpx.AsyncClient(base_url=self.root) as client:
            response = await client.get("/_control")
            return int(response.json()["requests_total"])


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_fake_openai_app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.01)
    yield FakeUpstream(f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


class RecommenderFactory:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.built: list[OpenAIRecommender] = []

    def __call__(
        self,
        *,
        timeout_s: float = 2.0,
        max_concurrency: int = 10,
        fail_max: int = 3,
        reset_timeout: float = 30.0,
    ) -> tuple[OpenAIRecommender, AsyncCircuitBreaker]:
        breaker = AsyncCircuitBreaker("openai", fail_max=fail_max, reset_timeout=reset_timeout)
        recommender = OpenAIRecommender(
            api_key=API_KEY,
            base_url=self.base_url,
            model="gpt-test",
            timeout_s=timeout_s,
            max_concurrency=max_concurrency,
            breaker=breaker,
        )
        self.built.append(recommender)
        return recommender, breaker


@pytest.fixture
async def make_recommender(fake_upstream: FakeUpstream) -> AsyncIterator[RecommenderFactory]:
    factory = RecommenderFactory(fake_upstream.base_url)
    yield factory
    for recommender in factory.built:
        await recommender.aclose()


async def tripped(
    make_recommender: RecommenderFactory,
    upstream: FakeUpstream,
    *,
    reset_timeout: float = 30.0,
    **fault: Any,
) -> tuple[OpenAIRecommender, AsyncCircuitBreaker]:
    """A recommender whose breaker (fail_max 2) the upstream, failing with `fault`, has just
    opened: two calls, each refused as unavailable."""
    recommender, breaker = make_recommender(fail_max=2, reset_timeout=reset_timeout)
    await upstream.configure(**fault)
    for _ in range(2):
        with pytest.raises(AIUnavailableError):
            await recommender.recommend(REQUEST, MENU)
    return recommender, breaker


async def test_a_healthy_upstream_returns_validated_items_from_the_menu(
    make_recommender: RecommenderFactory,
) -> None:
    recommender, breaker = make_recommender()
    answer = await recommender.recommend(REQUEST, MENU)
    # The fake picks cheapest-first within the budget it read from our JSON document.
    assert [item.menu_item_id for item in answer.items] == ["tea", "cake"]
    assert all(item.reason for item in answer.items)
    assert answer.message
    assert breaker.status().state == "closed"


@pytest.mark.parametrize(("fault", "causes"), FAULTS)
async def test_each_upstream_fault_is_unavailable_and_opens_the_breaker(
    fake_upstream: FakeUpstream,
    make_recommender: RecommenderFactory,
    fault: dict[str, Any],
    causes: set[str],
) -> None:
    recommender, breaker = make_recommender(timeout_s=0.3, fail_max=3)
    await fake_upstream.configure(**fault)

    for attempt in range(1, 4):
        with pytest.raises(AIUnavailableError) as failed:
            await recommender.recommend(REQUEST, MENU)
        assert not isinstance(failed.value, AICircuitOpenError)
        assert breaker.status().fail_counter == attempt
    status = breaker.status()
    assert status.state == "open"
    assert status.last_error_class in causes

    with pytest.raises(AICircuitOpenError):
        await recommender.recommend(REQUEST, MENU)
    assert await fake_upstream.requests_total() == 3


async def test_the_api_key_never_appears_in_the_error(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, _ = make_recommender()
    await fake_upstream.configure(mode="error", status_code=401)
    with pytest.raises(AIUnavailableError) as failed:
        await recommender.recommend(REQUEST, MENU)
    shown = f"{failed.value} {failed.value!r} {failed.value.details} {recommender!r}"
    assert API_KEY not in shown
    assert failed.value.details == {"cause": "AuthenticationError", "upstream_status": 401}


async def test_while_open_the_upstream_is_not_called_at_all(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, _ = await tripped(make_recommender, fake_upstream, mode="error", status_code=500)
    await fake_upstream.configure(mode="ok")

    for _ in range(10):
        with pytest.raises(AICircuitOpenError):
            await recommender.recommend(REQUEST, MENU)
    assert await fake_upstream.requests_total() == 2


async def test_after_the_reset_timeout_a_single_trial_goes_upstream_and_heals_the_circuit(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, breaker = await tripped(
        make_recommender, fake_upstream, reset_timeout=0.3, mode="error", status_code=500
    )
    await fake_upstream.configure(mode="ok", latency_ms=200)
    await asyncio.sleep(0.4)

    results = await asyncio.gather(
        *(recommender.recommend(REQUEST, MENU) for _ in range(5)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, AICircuitOpenError)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert (len(answered), len(refused)) == (1, 4)
    assert await fake_upstream.requests_total() == 3
    assert breaker.status().state == "closed"
    await recommender.recommend(REQUEST, MENU)


async def test_a_failed_trial_keeps_the_circuit_open(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, breaker = await tripped(
        make_recommender, fake_upstream, reset_timeout=0.3, mode="malformed"
    )
    await asyncio.sleep(0.4)

    with pytest.raises(AIUnavailableError) as trial:
        await recommender.recommend(REQUEST, MENU)
    assert not isinstance(trial.value, AICircuitOpenError)
    assert breaker.status().state == "open"
    with pytest.raises(AICircuitOpenError):
        await recommender.recommend(REQUEST, MENU)
    assert await fake_upstream.requests_total() == 3


async def test_healthy_concurrent_calls_are_not_serialized(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, _ = make_recommender(max_concurrency=10)
    await fake_upstream.configure(latency_ms=200)
    await recommender.recommend(REQUEST, MENU)  # connect once so the timing covers calls only

    started = time.perf_counter()
    answers = await asyncio.gather(*(recommender.recommend(REQUEST, MENU) for _ in range(10)))
    elapsed = time.perf_counter() - started

    assert len(answers) == 10
    assert elapsed < 0.6  # one after another would take 2 s


async def test_calls_beyond_the_bulkhead_are_refused_at_once_and_not_counted(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, breaker = make_recommender(max_concurrency=2)
    await fake_upstream.configure(latency_ms=300)
    in_flight = [asyncio.create_task(recommender.recommend(REQUEST, MENU)) for _ in range(2)]
    await asyncio.sleep(0.05)

    with pytest.raises(AIBusyError):
        await recommender.recommend(REQUEST, MENU)
    assert not any(task.done() for task in in_flight)

    await asyncio.gather(*in_flight)
    assert breaker.status().fail_counter == 0
    await recommender.recommend(REQUEST, MENU)
    assert await fake_upstream.requests_total() == 3


async def test_an_empty_menu_is_refused_without_calling_upstream(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, _ = make_recommender()
    with pytest.raises(InvalidInputError):
        await recommender.recommend(REQUEST, [])
    assert await fake_upstream.requests_total() == 0


async def test_the_upstream_can_break_and_heal_while_calls_keep_coming(
    fake_upstream: FakeUpstream, make_recommender: RecommenderFactory
) -> None:
    recommender, breaker = make_recommender(fail_max=3, reset_timeout=0.2)
    await recommender.recommend(REQUEST, MENU)
    await fake_upstream.configure(mode="error", status_code=502)
    outcomes = []
    for _ in range(5):
        try:
            await recommender.recommend(REQUEST, MENU)
            outcomes.append("ok")
        except AICircuitOpenError:
            outcomes.append("open")
        except AIUnavailableError:
            outcomes.append("failed")
    assert outcomes == ["failed", "failed", "failed", "open", "open"]

    await fake_upstream.configure(mode="ok")
    await asyncio.sleep(0.3)
    await recommender.recommend(REQUEST, MENU)
    assert breaker.status().state == "closed"
