"""Rate limiting: who the client is, how hits are counted, and the middleware that enforces it."""

from __future__ import annotations

from service.ratelimit.identity import ClientIdentity
from service.ratelimit.limiter import Decision, Limiter, LimiterUnavailable, RateLimit, StrategyName
from service.ratelimit.middleware import (
    KeyContext,
    KeyFunc,
    RateLimitMiddleware,
    RoutePolicy,
    by_client,
    by_path_param,
)

__all__ = [
    "ClientIdentity",
    "Decision",
    "KeyContext",
    "KeyFunc",
    "Limiter",
    "LimiterUnavailable",
    "RateLimit",
    "RateLimitMiddleware",
    "RoutePolicy",
    "StrategyName",
    "by_client",
    "by_path_param",
]
