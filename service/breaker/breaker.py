"""A circuit breaker for coroutines, driving pybreaker's state machine from asyncio.

pybreaker cannot guard a coroutine by itself: decorating an `async def` only times the creation
of the coroutine, and `CircuitBreaker.call` holds a lock for the whole call. So this class awaits
the call itself, outside any lock, and afterwards replays the outcome through
`CircuitBreaker.call` so pybreaker still counts, trips, closes and notifies its listeners.
Admission is decided here, synchronously, which is what makes "one trial call while half-open"
hold: no other coroutine can run between the check and the claim. One instance belongs to one
event loop.

pybreaker is imported on the first call through the breaker, not at start-up: it imports redis
(and tornado) when they are installed, ~11 MiB per worker that a service without Redis and
without AI traffic never needs. Until then the breaker is closed with no failures counted.

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
from functools import cache
from typing import TYPE_CHECKING, Literal, NoReturn, ParamSpec, TypeVar

from service.domain.errors import ServiceUnavailableError

if TYPE_CHECKING:
    import pybreaker

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]
StateListener = Callable[[str, BreakerState, BreakerState], None]
Clock = Callable[[], datetime]

# pybreaker's state names (its STATE_CLOSED, STATE_OPEN, STATE_HALF_OPEN) -> ours.
_STATE_NAMES: dict[str, BreakerState] = {
    "closed": "closed",
    "open": "open",
    "half-open": "half_open",
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
        self._name, self._fail_max, self._reset_timeout = name, fail_max, reset_timeout
        self._built: tuple[pybreaker.CircuitBreaker, pybreaker.CircuitMemoryStorage] | None = None

    def _machine(self) -> tuple[pybreaker.CircuitBreaker, pybreaker.CircuitMemoryStorage]:
        """pybreaker's breaker and its state, built on first use."""
        if self._built is None:
            import pybreaker

            storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
            breaker = pybreaker.CircuitBreaker(
                fail_max=self._fail_max,
                reset_timeout=self._reset_timeout,
                exclude=[self._is_not_counted],
                listeners=[_relay_class()(self)],
                state_storage=storage,
                name=self._name,
            )
            self._built = (breaker, storage)
        return self._built

    @property
    def fail_max(self) -> int:
        return self._fail_max

    @property
    def name(self) -> str:
        return self._name

    def add_listener(self, listener: StateListener) -> None:
        """Call `listener(name, old_state, new_state)` on every state change."""
        self._listeners.append(listener)

    def status(self) -> BreakerStatus:
        if self._built is None:  # never called: closed, nothing counted
            state: BreakerState = "closed"
            failures = 0
        else:
            breaker, storage = self._built
            state, failures = _STATE_NAMES[storage.state], breaker.fail_counter
        return BreakerStatus(
            name=self.name,
            state=state,
            fail_counter=failures,
            opened_at=None if state == "closed" else self._opened_at,
            reset_timeout=self._reset_timeout,
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
        breaker, storage = self._machine()
        state = _STATE_NAMES[storage.state]
        if state == "closed":
            return False
        if self._trial_in_flight or (state == "open" and self._retry_after() > 0):
            raise CircuitOpenError(
                f"circuit {self.name!r} is open",
                details={"breaker": self.name, "retry_after_s": math.ceil(self._retry_after())},
            )
        if state == "open":
            breaker.half_open()
        self._trial_in_flight = True
        return True

    def _retry_after(self) -> float:
        opened_at = self._opened_at
        if opened_at is None or self._built is None or self._built[1].state != "open":
            return 0.0
        reopen_at = opened_at + timedelta(seconds=self._reset_timeout)
        return max(0.0, (reopen_at - self._clock()).total_seconds())

    def _record(self, generation: int, exc: Exception | None) -> None:
        if exc is not None and isinstance(exc, self._counted):
            # Adapters translate upstream errors with `raise ... from`; the cause names the fault.
            self._last_error_class = type(exc.__cause__ or exc).__name__
        if generation != self._generation:
            return
        import pybreaker

        breaker, _ = self._machine()
        if exc is None:
            breaker.call(_succeed)
            return
        traceback = exc.__traceback__
        try:
            # pybreaker re-raises what it was given (or CircuitBreakerError when it trips);
            # the caller re-raises the original, so both are dropped here.
            with contextlib.suppress(pybreaker.CircuitBreakerError, type(exc)):
                breaker.call(_fail, exc)
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


@cache
def _relay_class() -> Callable[[AsyncCircuitBreaker], pybreaker.CircuitBreakerListener]:
    """The listener that reports pybreaker's state changes to their AsyncCircuitBreaker
    (defined on first use, with pybreaker)."""
    import pybreaker

    class Relay(pybreaker.CircuitBreakerListener):
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

    return Relay


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _succeed() -> None:
    return None


def _fail(exc: Exception) -> NoReturn:
    raise exc
