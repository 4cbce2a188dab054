from __future__ import annotations

from service.breaker.breaker import (
    AsyncCircuitBreaker,
    BreakerState,
    BreakerStatus,
    CircuitOpenError,
    StateListener,
)

__all__ = [
    "AsyncCircuitBreaker",
    "BreakerState",
    "BreakerStatus",
    "CircuitOpenError",
    "StateListener",
]
