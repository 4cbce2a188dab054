"""Many customers, one slot: each POST is 201 or 409 `slot_full`, nothing else, and the 201s
never outnumber the seats the slot had left when the test started.

Every user must rush the same slot, so one process chooses it at test start (the local runner,
or the master) and sends it to the others as a Locust message: the first bookable slot of the
first listed store, on the store's next local day, so it cannot pass its cut-off mid-test.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from gevent.event import Event
from locust import between, tag, task
from locust.env import Environment
from locust.exception import StopUser
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from . import counters
from .api import PickupUser, call, error_code, expect, local_date, order_body

MESSAGE = "pickup_rush_target"
target: dict[str, Any] = {}
target_known = Event()
created_here = 0  # 201s seen by this process, to catch overbooking within the run


@tag("rush")
class SlotRushUser(PickupUser):
    opt_in = True  # distorts a mixed run (fills a slot), so it runs only when selected
    wait_time = between(0.05, 0.25)

    def on_start(self) -> None:
        if not target_known.wait(timeout=30) or "error" in target:
            why = target.get("error", "no rush target after 30 s")
            self.environment.events.request.fire(
                request_type="SETUP",
                name="rush target",
                response_time=0,
                response_length=0,
                exception=RuntimeError(why),
                context={},
            )
            raise StopUser

    @task
    def book_the_rush_slot(self) -> None:
        global created_here
        body = order_body(target["store_id"], target["slot_start"], [(target["menu_item_id"], 1)])
        with self.client.post(
            "/v1/orders", json=body, name="/v1/orders [rush]", catch_response=True
        ) as resp:
            answer = expect(resp, 201, 409)
            if answer is None:
                return
            if resp.status_code == 409:
                if error_code(answer) == "slot_full":
                    counters.count("rush.slot_full")
                else:
                    resp.failure(f"409 {error_code(answer)}, expected slot_full")
                return
            counters.count("rush.created")
            created_here += 1
            booked = datetime.fromisoformat(answer["pickup_slot_start"])
            if booked != datetime.fromisoformat(target["slot_start"]):
                resp.failure(f"booked {booked}, not the rush slot")
            elif created_here > target["remaining_at_start"]:
                seats = target["remaining_at_start"]
                resp.failure(f"overbooked: {created_here} orders for {seats} seats")


def setup(environment: Environment) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE, receive)
    if isinstance(runner, WorkerRunner):
        return

    @environment.events.test_start.add_listener
    def choose_target(**_: Any) -> None:
        if SlotRushUser not in environment.user_classes:
            return
        try:
            chosen = find_target(environment.host or "")
        except (OSError, ValueError, LookupError) as exc:
            logging.error("rush: no target slot: %r", exc)
            chosen = {"error": f"no target slot: {exc!r}"}
        logging.info("rush target: %s", chosen)
        counters.notes["rush_target"] = chosen
        runner.send_message(MESSAGE, chosen)  # to every worker, or to this process when local


def receive(msg: Message, **_: Any) -> None:
    global created_here
    target.clear()
    target.update(msg.data)
    created_here = 0
    target_known.set()


def find_target(host: str) -> dict[str, Any]:
    root = host.rstrip("/")
    store = call(f"{root}/v1/stores?limit=1")["items"][0]
    menu = call(f"{root}/v1/stores/{store['id']}/menu")["items"]
    item = next((item for item in menu if item["available"]), None)
    if item is None:
        raise LookupError("nothing available on the first store's menu")
    for days_ahead in range(1, 8):
        day = local_date(store, days_ahead).isoformat()
        for slot in call(f"{root}/v1/stores/{store['id']}/slots?date={day}")["items"]:
            if slot["bookable"]:
                return {
                    "store_id": store["id"],
                    "slot_start": slot["start"],
                    "capacity": slot["capacity"],
                    "remaining_at_start": slot["remaining"],
                    "menu_item_id": item["id"],
                }
    raise LookupError("no bookable slot in the first store's next 7 days")
