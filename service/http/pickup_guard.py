"""The per-order budget of pickup-code attempts: six digits must not be guessable by retrying.

It runs in the hand-over handler, after the staff key and the body have been accepted, so only
authenticated, well-formed attempts spend it: anonymous or malformed posts can no longer lock the
real hand-over out. It fails closed: when the limiter's storage cannot count, the attempt is
refused with 503 even where the general limiter fails open, since an uncounted guess is exactly
what the budget exists to prevent.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.errors import PickupError, ServiceUnavailableError
from service.domain.ids import canonical_id
from service.ratelimit import Limiter
from service.ratelimit.limiter import LimiterUnavailable, RateLimit


class PickupAttemptsExhaustedError(PickupError):
    """Raised when an order's pickup-code attempts are spent for the current window."""

    code = "rate_limited"


@dataclass(frozen=True, slots=True)
class PickupGuard:
    limiter: Limiter
    policy: RateLimit

    async def spend(self, order_id: str) -> None:
        key = f"pickup-per-order:{canonical_id(order_id) or order_id}"
        decision = await self.limiter.hit(self.policy, key)
        if isinstance(decision, LimiterUnavailable) or decision.degraded:
            raise ServiceUnavailableError(
                "pickup codes cannot be checked right now (attempt counting is unavailable); "
                "please retry shortly"
            )
        if not decision.allowed:
            retry = decision.reset_after_s
            raise PickupAttemptsExhaustedError(
                f"too many pickup-code attempts for this order; retry after {retry} s",
                details={
                    "limit": decision.limit,
                    "window_s": self.policy.window_s,
                    "retry_after_s": retry,
                },
            )
