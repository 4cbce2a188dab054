"""Only GET /healthz, which calls no dependency: measures the HTTP stack's own cost."""

from __future__ import annotations

from locust import constant, tag, task

from .api import PickupUser, expect


@tag("health")
class HealthUser(PickupUser):
    opt_in = True  # a measuring tool, not a customer
    wait_time = constant(0)

    @task
    def check_health(self) -> None:
        with self.client.get("/healthz", name="/healthz", catch_response=True) as resp:
            body = expect(resp, 200)
            if body is not None and body.get("status") != "ok":
                resp.failure(f"status {body.get('status')!r}")
