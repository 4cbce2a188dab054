"""Service settings more than one driver starts the service with.

`DEPLOYED_DUTIES` is what every request pays for in production whatever else is switched:
the rate limiter on and counting every request (with budgets no load generator's single address
can exhaust, so it refuses none), metrics on, and the access log written at LOG_LEVEL=info. The
lab's production and naive setups (notebooks/labkit/setups.py) and `make loadtest`'s own server
(loadtests/run.py) start from it."""

from __future__ import annotations

NEVER_REFUSES = "1000000000"

DEPLOYED_DUTIES: dict[str, str] = {
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_MAX": NEVER_REFUSES,
    "RATE_LIMIT_ORDERS_MAX": NEVER_REFUSES,
    "RATE_LIMIT_AI_MAX": NEVER_REFUSES,
    "METRICS_ENABLED": "true",
    "ACCESS_LOG": "true",
    "LOG_LEVEL": "info",
}
