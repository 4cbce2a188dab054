"""Customers browsing: store list, store detail, menu and slots, with a few hot stores."""

from __future__ import annotations

from typing import Any

from locust import tag, task

from .api import PickupUser, expect


@tag("browse")
class BrowseUser(PickupUser):
    # Real clients ask for gzip (FastHttpUser would send "gzip, deflate, br").
    headers = {"Accept-Encoding": "gzip"}

    def on_start(self) -> None:
        # Opening the app: the store list, then one store's page with its menu and slots.
        self.stores = self.stores_to_visit()
        store = self.view_store()
        self.menu(store["id"])
        self.bookable_slots(store)

    @task(1)
    def list_stores(self) -> None:
        self.discover_stores()

    @task(2)
    def view_store(self) -> dict[str, Any]:
        store: dict[str, Any] = self.stores.pick()
        store_id = store["id"]
        with self.checked_get(f"/v1/stores/{store_id}", "/v1/stores/[id]") as resp:
            answer = expect(resp, 200)
            if answer is not None and answer.get("id") != store_id:
                resp.failure("answered with another store")
        return store

    @task(5)
    def view_menu(self) -> None:
        self.menu(self.stores.pick()["id"])

    @task(2)
    def view_slots(self) -> None:
        self.bookable_slots(self.stores.pick())
