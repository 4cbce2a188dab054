from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from service.breaker import AsyncCircuitBreaker, BreakerState, CircuitOpenError

RESET = 0.2


class UpstreamDown(Exception):
    pass


class BusinessRuleBroken(Exception):
    pass


class Upstream:
    """A hand-written stand-in for a dependency: counts calls and fails on demand."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False
        self.latency = 0.0
        self.gate: asyncio.Event | None = None

    async def __call__(self, value: str = "ok") -> str:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.failing:
            raise UpstreamDown("down")
        return value


class Clock:
    """Time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


CLOCK = Clock()


def make_breaker(exceptions: tuple[type[Exception], ...] = (Exception,)) -> AsyncCircuitBreaker:
    return AsyncCircuitBreaker(
        "upstream", fail_max=3, reset_timeout=RESET, exceptions=exceptions, clock=CLOCK
    )


def wait_out_the_reset_timeout() -> None:
    CLOCK.advance(RESET * 1.25)


async def trip(breaker: AsyncCircuitBreaker, upstream: Upstream) -> None:
    upstream.failing = True
    for _ in range(breaker.status().fail_counter, 3):
        with pytest.raises(UpstreamDown):
            await breaker.call(upstream)
    assert breaker.status().state == "open"


async def due_for_a_trial() -> tuple[AsyncCircuitBreaker, Upstream]:
    """A breaker that opened on an upstream which has since healed, its reset timeout over."""
    breaker, upstream = make_breaker(), Upstream()
    await trip(breaker, upstream)
    wait_out_the_reset_timeout()
    upstream.failing = False
    return breaker, upstream


async def test_a_healthy_call_returns_its_result() -> None:
    breaker = make_breaker()
    assert await breaker.call(Upstream(), "hello") == "hello"
    assert breaker.status().state == "closed"


async def test_a_failure_reaches_the_caller_unchanged_and_is_counted() -> None:
    breaker, upstream = make_breaker(), Upstream()
    upstream.failing = True
    with pytest.raises(UpstreamDown, match="down"):
        await breaker.call(upstream)
    assert breaker.status().fail_counter == 1
    assert breaker.status().state == "closed"


async def test_a_success_resets_the_failure_count() -> None:
    breaker, upstream = make_breaker(), Upstream()
    upstream.failing = True
    for _ in range(2):
        with pytest.raises(UpstreamDown):
            await breaker.call(upstream)
    upstream.failing = False
    await breaker.call(upstream)
    assert breaker.status().fail_counter == 0
    upstream.failing = True
    for _ in range(2):
        with pytest.raises(UpstreamDown):
            await breaker.call(upstream)
    assert breaker.status().state == "closed"


async def test_the_circuit_opens_after_fail_max_consecutive_failures() -> None:
    breaker, upstream = make_breaker(), Upstream()
    await trip(breaker, upstream)
    status = breaker.status()
    assert status.fail_counter == 3
    assert status.opened_at is not None
    assert status.opened_at == CLOCK.now


async def test_an_open_circuit_refuses_at_once_without_calling_the_function() -> None:
    breaker, upstream = make_breaker(), Upstream()
    await trip(breaker, upstream)
    calls_when_opened = upstream.calls
    for _ in range(5):
        with pytest.raises(CircuitOpenError) as refused:
            await breaker.call(upstream)
        assert refused.value.details["breaker"] == "upstream"
    assert upstream.calls == calls_when_opened


async def test_exceptions_outside_the_configured_types_pass_through_uncounted() -> None:
    breaker = make_breaker(exceptions=(UpstreamDown,))

    async def reject() -> None:
        raise BusinessRuleBroken("no")

    for _ in range(5):
        with pytest.raises(BusinessRuleBroken):
            await breaker.call(reject)
    assert breaker.status().state == "closed"
    assert breaker.status().fail_counter == 0


async def test_after_the_reset_timeout_exactly_one_trial_goes_through() -> None:
    breaker, upstream = await due_for_a_trial()
    upstream.gate = asyncio.Event()
    calls_before = upstream.calls

    trial = asyncio.create_task(breaker.call(upstream, "trial"))
    await asyncio.sleep(0)
    assert breaker.status().state == "half_open"
    # A bounded wait: a regression that lets the others through would park them on the gate.
    async with asyncio.timeout(1):
        others = await asyncio.gather(
            *(breaker.call(upstream) for _ in range(5)), return_exceptions=True
        )

    # The others were refused while the trial was still waiting, not queued behind it.
    assert not trial.done()
    assert all(isinstance(result, CircuitOpenError) for result in others)
    upstream.gate.set()
    assert await trial == "trial"
    assert upstream.calls == calls_before + 1


async def test_a_successful_trial_closes_the_circuit() -> None:
    breaker, upstream = await due_for_a_trial()
    await breaker.call(upstream)
    status = breaker.status()
    assert (status.state, status.fail_counter, status.opened_at) == ("closed", 0, None)
    assert await breaker.call(upstream, "again") == "again"


async def test_a_failed_trial_reopens_the_circuit_and_restarts_the_timeout() -> None:
    breaker, upstream = make_breaker(), Upstream()
    await trip(breaker, upstream)
    first_opened_at = breaker.status().opened_at
    assert first_opened_at is not None
    wait_out_the_reset_timeout()

    with pytest.raises(UpstreamDown):
        await breaker.call(upstream)

    status = breaker.status()
    assert status.state == "open"
    assert status.opened_at is not None
    assert status.opened_at > first_opened_at
    calls = upstream.calls
    with pytest.raises(CircuitOpenError):
        await breaker.call(upstream)
    assert upstream.calls == calls


async def test_a_cancelled_trial_lets_the_next_caller_try() -> None:
    breaker, upstream = await due_for_a_trial()
    upstream.gate = asyncio.Event()
    trial = asyncio.create_task(breaker.call(upstream))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial

    upstream.gate.set()
    assert await breaker.call(upstream, "second try") == "second try"
    assert breaker.status().state == "closed"


async def test_a_slow_success_started_before_the_circuit_opened_does_not_close_it() -> None:
    breaker, upstream = make_breaker(), Upstream()
    slow = Upstream()
    slow.gate = asyncio.Event()
    in_flight = asyncio.create_task(breaker.call(slow, "late"))
    await asyncio.sleep(0)
    await trip(breaker, upstream)

    slow.gate.set()
    assert await in_flight == "late"
    assert breaker.status().state == "open"


async def test_concurrent_healthy_calls_are_not_serialized() -> None:
    breaker = make_breaker()
    in_flight = peak = 0
    all_started = asyncio.Event()

    async def slow_call() -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 10:
            all_started.set()
        # Serialized calls would wait here for ever: each would need the next to start first.
        await all_started.wait()
        in_flight -= 1

    async with asyncio.timeout(1):
        await asyncio.gather(*(breaker.call(slow_call) for _ in range(10)))

    assert peak == 10


async def test_status_names_the_cause_of_the_last_failure() -> None:
    breaker = make_breaker()
    assert breaker.status().last_error_class is None

    async def translated_failure() -> None:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as exc:
            raise UpstreamDown("upstream unavailable") from exc

    with pytest.raises(UpstreamDown):
        await breaker.call(translated_failure)
    status = breaker.status()
    assert status.last_error_class == "ConnectionResetError"
    assert (status.name, status.reset_timeout) == ("upstream", RESET)


async def test_listeners_observe_every_state_change() -> None:
    breaker, upstream = make_breaker(), Upstream()
    changes: list[tuple[str, BreakerState, BreakerState]] = []
    breaker.add_listener(lambda name, old, new: changes.append((name, old, new)))

    await trip(breaker, upstream)
    wait_out_the_reset_timeout()
    upstream.failing = False
    await breaker.call(upstream)

    assert changes == [
        ("upstream", "closed", "open"),
        ("upstream", "open", "half_open"),
        ("upstream", "half_open", "closed"),
    ]


async def test_a_failing_listener_does_not_break_calls() -> None:
    breaker, upstream = make_breaker(), Upstream()

    def broken_listener(name: str, old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("metrics backend down")

    breaker.add_listener(broken_listener)
    await trip(breaker, upstream)
    with pytest.raises(CircuitOpenError):
        await breaker.call(upstream)
