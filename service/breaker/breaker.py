"""A circuit breaker for coroutines, driving pybreaker's state machine from asyncio.

pybreaker cannot guard a coroutine by itself: decorating an `async def` only times the creation
of the coroutine, and `CircuitBreaker.call` holds a lock for the whole call. So this class awaits
the call itself, outside any lock, and afterwards replays the outcome through
`CircuitBreaker.call` so pybreaker still counts, trips, closes and notifies its listeners.
Admission is decided here, synchronously, which is what makes "one trial call while half-open"
hold: no other coroutine can run between the check and the claim. One instance belongs to one
event loop.

Time comes from an injectable clock (`clock=`, default the UTC wall clock): the breaker records
when it opened by that clock and decides when a trial may go by it, so tests move time instead
of sleeping.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NoReturn, ParamSpec, TypeVar

import pybreaker

from service.domain.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]
StateListener = Callable[[str, BreakerState, BreakerState], None]
Clock = Callable[[], datetime]

_STATE_NAMES: dict[str, BreakerState] = {
    pybreaker.STATE_CLOSED: "closed",
    pybreaker.STATE_OPEN: "open",
    pybreaker.STATE_HALF_OPEN: "half_open",
}


class CircuitOpenError(ServiceUnavailableError):
    """Raised when a call is refused untried because the circuit is open or its trial is running."""

    code = "circuit_open"


@dataclass(frozen=True)
class BreakerStatus:
    name: str
    state: BreakerState
    fail_counter: int
    opened_at: datetime | None
    reset_timeout: float
    last_error_class: str | None


class AsyncCircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        exceptions: tuple[type[Exception], ...] = (Exception,),
        clock: Clock | None = None,
    ) -> None:
        self._counted = exceptions
        self._clock: Clock = clock or _utc_now
        # When the circuit last opened, by our clock (pybreaker's own stamp reads the wall clock).
        self._opened_at: datetime | None = None
        self._listeners: list[StateListener] = []
        # Bumped on every state change, so an outcome that arrives after the state moved on
        # (a slow call admitted before the circuit opened) is not mistaken for a trial result.
        self._generation = 0
        self._trial_in_flight = False
        self._last_error_class: str | None = None
        self._storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=[self._is_not_counted],
            listeners=[_Relay(self)],
            state_storage=self._storage,
            name=name,
        )

    @property
    def fail_max(self) -> int:
        return int(self._breaker.fail_max)

    @property
    def name(self) -> str:
        return self._breaker.name or ""

    def add_listener(self, listener: StateListener) -> None:
        """Call `listener(name, old_state, new_state)` on every state change."""
        self._listeners.append(listener)

    def status(self) -> BreakerStatus:
        state = _STATE_NAMES[self._storage.state]
        return BreakerStatus(
            name=self.name,
            state=state,
            fail_counter=self._breaker.fail_counter,
            opened_at=None if state == "closed" else self._opened_at,
            reset_timeout=self._breaker.reset_timeout,
            last_error_class=self._last_error_class,
        )

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        trial = self._admit()
        generation = self._generation
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self._record(generation, exc)
            raise
        else:
            self._record(generation, None)
            return result
        finally:
            # Cancellation lands here unrecorded: a caller giving up says nothing about the
            # upstream, and the next caller may run the trial instead.
            if trial:
                self._trial_in_flight = False

    def _admit(self) -> bool:
        state = self._storage.state
        if state == pybreaker.STATE_CLOSED:
            return False
        if self._trial_in_flight or (state == pybreaker.STATE_OPEN and self._retry_after() > 0):
            raise CircuitOpenError(
                f"circuit {self.name!r} is open",
                details={"breaker": self.name, "retry_after_s": math.ceil(self._retry_after())},
            )
        if state == pybreaker.STATE_OPEN:
            self._breaker.half_open()
        self._trial_in_flight = True
        return True

    def _retry_after(self) -> float:
        opened_at = self._opened_at
        if opened_at is None or self._storage.state != pybreaker.STATE_OPEN:
            return 0.0
        reopen_at = opened_at + timedelta(seconds=self._breaker.reset_timeout)
        return max(0.0, (reopen_at - self._clock()).total_seconds())

    def _record(self, generation: int, exc: Exception | None) -> None:
        if exc is not None and isinstance(exc, self._counted):
            # Adapters translate upstream errors with `raise ... from`; the cause names the fault.
            self._last_error_class = type(exc.__cause__ or exc).__name__
        if generation != self._generation:
            return
        if exc is None:
            self._breaker.call(_succeed)
            return
        traceback = exc.__traceback__
        try:
            # pybreaker re-raises what it was given (or CircuitBreakerError when it trips);
            # the caller re-raises the original, so both are dropped here.
            with contextlib.suppress(pybreaker.CircuitBreakerError, type(exc)):
                self._breaker.call(_fail, exc)
        finally:
            exc.__traceback__ = traceback

    def _is_not_counted(self, exc: BaseException) -> bool:
        return not isinstance(exc, self._counted)

    def _state_changed(self, old: BreakerState, new: BreakerState) -> None:
        self._generation += 1
        if new == "open":
            self._opened_at = self._clock()
        for listener in self._listeners:
            try:
                listener(self.name, old, new)
            except Exception:
                # Metrics must never break the call path.
                logger.exception("breaker %r listener %r failed", self.name, listener)


class _Relay(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: AsyncCircuitBreaker) -> None:
        self._owner = owner

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        old = _STATE_NAMES[old_state.name] if old_state is not None else "closed"
        self._owner._state_changed(old, _STATE_NAMES[new_state.name])


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _succeed() -> None:
    return None


def _fail(exc: Exception) -> NoReturn:
    raise exc
