"""Customers asking for AI recommendations. Every answer must have the fixed shape (1-5 items
from the store's menu, source openai|fallback); answers are counted per source.

With `--fake-openai-url`, one process (local runner or master) drives the fake upstream through
a timetable of `--fault-phase-seconds` each: healthy, slow (past the service's 3 s deadline),
failing, healed. The breaker should open during the faults and close again in the last phase;
the counts per phase and source show it.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import gevent
from locust import tag, task
from locust.env import Environment
from locust.runners import WorkerRunner

from . import counters
from .api import PickupUser, call, expect

PREFERENCES = (
    "something vegan and hot",
    "a strong coffee to go",
    "sweet breakfast for the kids",
    "a light lunch",
    "gluten free snack",
    "tea and a pastry",
)
HEALTHY = {"mode": "ok", "latency_ms": 0, "error_rate": 0.0}
PHASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("healthy", HEALTHY),
    ("slow", {**HEALTHY, "latency_ms": 5000}),
    ("failing", {**HEALTHY, "mode": "error", "status_code": 503}),
    ("healed", HEALTHY),
)
SOURCES = ("openai", "fallback")
test_started = 0.0


@tag("ai")
class AIUser(PickupUser):
    def on_start(self) -> None:
        self.stores = self.stores_to_visit()
        self.menu_ids: dict[str, set[str]] = {}

    @task
    def ask_for_recommendations(self) -> None:
        store_id = self.stores.pick()["id"]
        if not self.menu_ids.get(store_id):
            self.menu_ids[store_id] = {item["id"] for item in self.menu(store_id)}
        body: dict[str, Any] = {"preferences": random.choice(PREFERENCES)}
        if random.random() < 0.5:
            body["budget_cents"] = random.choice((800, 1500, 3000))
        if random.random() < 0.3:
            body["party_size"] = random.randint(1, 6)
        with self.client.post(
            f"/v1/stores/{store_id}/recommendations",
            json=body,
            name="/v1/stores/[id]/recommendations",
            catch_response=True,
        ) as resp:
            answer = expect(resp, 200)
            if answer is None:
                return
            if problem := recommendation_problem(answer, store_id, self.menu_ids[store_id]):
                resp.failure(problem)
                return
            counters.count(f"ai.source.{answer['source']}")
            if phase := phase_now(self.environment):
                counters.count(f"ai.phase.{phase}.{answer['source']}")


def recommendation_problem(answer: Any, store_id: str, menu_ids: set[str]) -> str | None:
    items = answer.get("items")
    if answer.get("source") not in SOURCES:
        return f"source {answer.get('source')!r}, expected one of {SOURCES}"
    if answer.get("store_id") != store_id or not isinstance(answer.get("message"), str):
        return "no message, or another store's answer"
    if not isinstance(items, list) or not 1 <= len(items) <= 5:
        return "expected 1-5 items"
    for item in items:
        if not isinstance(item, dict) or item.keys() != {
            "menu_item_id",
            "name",
            "price_cents",
            "reason",
        }:
            return f"item of the wrong shape: {item!r}"[:200]
        if menu_ids and item["menu_item_id"] not in menu_ids:
            return f"item {item['menu_item_id']} is not on the store's menu"
    return None


def phase_now(environment: Environment) -> str | None:
    options = environment.parsed_options
    if not options.fake_openai_url:
        return None
    index = int((time.monotonic() - test_started) // options.fault_phase_seconds)
    return PHASES[min(index, len(PHASES) - 1)][0]


def setup(environment: Environment) -> None:
    timetable: list[gevent.Greenlet] = []

    @environment.events.test_start.add_listener
    def start(**_: Any) -> None:
        global test_started
        test_started = time.monotonic()  # each process, so workers know the phase too
        options = environment.parsed_options
        if options.fake_openai_url and not isinstance(environment.runner, WorkerRunner):
            timetable.append(gevent.spawn(run_timetable, options.fake_openai_url, options))
            counters.notes["fault_timetable"] = [
                {"phase": name, "from_s": i * options.fault_phase_seconds, **behaviour}
                for i, (name, behaviour) in enumerate(PHASES)
            ]

    @environment.events.test_stop.add_listener
    def stop(**_: Any) -> None:
        while timetable:
            timetable.pop().kill()
            control(environment.parsed_options.fake_openai_url, "/_control/reset", {})


def run_timetable(url: str, options: Any) -> None:
    for name, behaviour in PHASES:
        logging.info("fake OpenAI phase %s: %s", name, behaviour)
        control(url, "/_control", behaviour)
        gevent.sleep(options.fault_phase_seconds)


def control(url: str, path: str, behaviour: dict[str, Any]) -> None:
    try:
        call(url.rstrip("/").removesuffix("/v1") + path, behaviour)
    except (OSError, ValueError) as exc:
        # The test goes on without faults; the counts per phase will show it.
        logging.error("could not reach the fake OpenAI at %s: %r", url, exc)
