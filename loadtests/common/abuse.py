"""Clients over the rate limit, some forging X-Forwarded-For.

By default each user plays a client behind a trusted proxy (`TRUST_PROXY=1`): it appends its
own fixed address as the last X-Forwarded-For hop, as the proxy would, so each user is a client
of its own; its forged requests add random entries to the left, which must not help. Behind a
real proxy that appends the true address, all users are simply that one client.

With `--abuse-direct` (for a server with `TRUST_PROXY=0`) the users connect as direct clients:
plain requests carry no X-Forwarded-For and forged ones a random address as the whole header.
All users are then one client, the load generator, and no forged value may buy more requests.

Expected: 200 (allowed) or 429 with `Retry-After` seconds and code `rate_limited` (limited: the
expected outcome, so a success). An answer allowed before this client's Retry-After has passed
means the limit was escaped, and fails.
"""

from __future__ import annotations

import ipaddress
import random
import time

from locust import constant, tag, task

from . import counters
from .api import PickupUser, error_code, expect

BENCHMARK_NET = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544: never a real client


def random_address() -> str:
    return str(BENCHMARK_NET[random.randrange(BENCHMARK_NET.num_addresses)])


@tag("abuse")
class AbuseUser(PickupUser):
    opt_in = True  # trips the limiter for everyone behind the same address
    wait_time = constant(0)

    def on_start(self) -> None:
        self.proxy_hop = [] if self.environment.parsed_options.abuse_direct else [random_address()]
        self.limited_until = 0.0

    @task
    def exceed_the_limit(self) -> None:
        self.list_stores(self.proxy_hop, "plain")

    @task
    def forge_forwarded_for(self) -> None:
        self.list_stores([random_address(), random_address(), *self.proxy_hop], "forged")

    def list_stores(self, forwarded_for: list[str], kind: str) -> None:
        headers = {"X-Forwarded-For": ", ".join(forwarded_for)} if forwarded_for else {}
        with self.client.get(
            "/v1/stores", headers=headers, name=f"/v1/stores [abuse {kind}]", catch_response=True
        ) as resp:
            answer = expect(resp, 200, 429)
            if answer is None:
                return
            if resp.status_code == 429:
                retry_after = resp.headers.get("Retry-After", "")
                if not retry_after.isdigit() or error_code(answer) != "rate_limited":
                    resp.failure("429 without Retry-After seconds or code rate_limited")
                    return
                # Retry-After is rounded to whole seconds; allow one second of slack.
                self.limited_until = time.monotonic() + int(retry_after) - 1
                counters.count(f"abuse.{kind}.limited")
            elif time.monotonic() < self.limited_until:
                resp.failure(f"{kind} request allowed before Retry-After passed: limit escaped")
                counters.count(f"abuse.{kind}.escaped")
            else:
                counters.count(f"abuse.{kind}.allowed")
