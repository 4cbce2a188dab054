"""The per-order budget of pickup-code attempts: six digits must not be guessable by retrying.

It runs in the hand-over handler, after the staff key and the body have been accepted, so only
authenticated, well-formed attempts spend it: anonymous or malformed posts can no longer lock the
real hand-over out.

No attempt goes uncounted, and an outage of the shared counter (Redis) does not stop customers
collecting their orders: while the limiter's storage cannot count, this process counts the
order's attempts itself, against the same budget, in memory. A guesser then gets at most the
budget once per worker (plus what Redis had counted before it went down) per window: with the
default 5 attempts and a few workers, a few dozen guesses at a six-digit code, where the general
limiter, which fails open, would have allowed any number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from service.domain.errors import PickupError
from service.domain.ids import canonical_id
from service.ratelimit import Limiter
from service.ratelimit.limiter import LimiterUnavailable, RateLimit
from service.ratelimit.window import MemorySlidingWindow


class PickupAttemptsExhaustedError(PickupError):
    """Raised when an order's pickup-code attempts are spent for the current window."""

    code = "rate_limited"


@dataclass(frozen=True, slots=True)
class PickupGuard:
    limiter: Limiter
    policy: RateLimit
    # This process's own count, used only while the limiter's storage cannot count.
    local: MemorySlidingWindow = field(default_factory=MemorySlidingWindow)

    async def spend(self, order_id: str) -> None:
        key = f"pickup-per-order:{canonical_id(order_id) or order_id}"
        decision = await self.limiter.hit(self.policy, key)
        if isinstance(decision, LimiterUnavailable) or decision.degraded:
            counted = self.local.hit_now(key, self.policy.limit, self.policy.window_s)
            allowed, retry = counted.allowed, max(1, math.ceil(counted.reset_after_s))
        else:
            allowed, retry = decision.allowed, decision.reset_after_s
        if not allowed:
            raise PickupAttemptsExhaustedError(
                f"too many pickup-code attempts for this order; retry after {retry} s",
                details={
                    "limit": self.policy.limit,
                    "window_s": self.policy.window_s,
                    "retry_after_s": retry,
                },
            )
