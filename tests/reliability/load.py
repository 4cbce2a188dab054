"""A steady, bounded background load of real HTTP traffic: customers browsing and ordering.

A few asyncio workers (httpx over loopback) run in a thread next to the test, which meanwhile
breaks and heals dependencies. Every request and its outcome is kept, with the time it was sent,
so a test can ask what happened before, during and after a fault. The load stops at
`max_requests` or `max_seconds`, whichever comes first, or when the test leaves the block.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tests.reliability.procs import STAFF

ALL_DAY = {
    d: [{"opens": "00:00", "closes": "23:45"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@dataclass(frozen=True)
class Shop:
    """A store open all day, its one menu item, and bookable slots for the load's orders."""

    store_id: str
    item_id: str
    slots: tuple[str, ...]

    def order(self, slot: str | None = None, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "store_id": self.store_id,
            "pickup_slot_start": slot or self.slots[0],
            "customer": {"name": "Grace Hopper", "phone": "+15550100"},
            "items": [{"menu_item_id": self.item_id, "quantity": 1}],
        }
        body.update(changes)
        return body


def open_shop(url: str, *, capacity: int = 1000, days_ahead: int = 1) -> Shop:
    """Creates a store in UTC, open 00:00-23:45 every day, and returns its slots `days_ahead`
    days from now (tomorrow by default, so none of them slips into the past during a test)."""
    with httpx.Client(base_url=url, headers=STAFF, timeout=10) as http:
        created = http.post(
            "/v1/stores",
            json={
                "name": "Reliability Roasters",
                "address": "1 Fault Lane",
                "timezone": "UTC",
                "slot_minutes": 15,
                "slot_capacity": capacity,
                "lead_time_minutes": 0,
                "opening_hours": ALL_DAY,
            },
        )
        created.raise_for_status()
        store_id = created.json()["id"]
        item = http.post(
            f"/v1/stores/{store_id}/menu",
            json={
                "name": "Flat White",
                "description": "Double shot, steamed milk",
                "category": "coffee",
                "price_cents": 380,
                "currency": "EUR",
                "tags": ["hot", "popular"],
            },
        )
        item.raise_for_status()
        day = (date.today() + timedelta(days=days_ahead)).isoformat()
        slots = http.get(f"/v1/stores/{store_id}/slots", params={"date": day}).json()["items"]
    bookable = tuple(s["start"] for s in slots if s["bookable"])
    assert bookable, "the new store has no bookable slot"
    return Shop(store_id, item.json()["id"], bookable)


@dataclass(frozen=True)
class Outcome:
    at: float  # seconds since the load started, when the request was sent
    kind: str  # "stores", "store", "menu", "slots", "order"
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    latency_s: float
    error: str | None = None  # the error code of a non-2xx answer, or the transport error
    body: bytes = b""  # non-2xx answers only, to show what a client got


@dataclass
class PlacedOrder:
    key: str
    order_id: str | None = None
    token: str | None = None
    attempts: list[Outcome] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.order_id is not None


class BackgroundLoad:
    def __init__(
        self,
        url: str,
        shop: Shop,
        *,
        workers: int = 4,
        max_requests: int = 20_000,
        max_seconds: float = 60.0,
        pause_s: float = 0.01,
        order_every: int = 5,
        retry_orders: bool = False,
        retry_deadline_s: float = 20.0,
    ) -> None:
        self.url, self.shop = url, shop
        self.workers, self.max_requests, self.max_seconds = workers, max_requests, max_seconds
        self.pause_s, self.order_every = pause_s, order_every
        # A real client retries a refused order with the same Idempotency-Key; without retries
        # every refusal counts as a failed order.
        self.retry_orders, self.retry_deadline_s = retry_orders, retry_deadline_s
        self.outcomes: list[Outcome] = []
        self.orders: list[PlacedOrder] = []
        self.started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent = 0
        self._lock = threading.Lock()
        self._retrying: set[asyncio.Task[None]] = set()
        self.crash: BaseException | None = None

    # -- control, from the test's thread ----------------------------------------------------

    def __enter__(self) -> BackgroundLoad:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="background-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_deadline_s + 15)
            assert not self._thread.is_alive(), "the background load did not stop"
        if self.crash is not None:
            raise self.crash

    def now(self) -> float:
        return time.monotonic() - self.started

    def wait_for_requests(self, more: int, timeout: float = 30.0) -> None:
        """Block until `more` further requests have been answered (or failed)."""
        target = len(self.outcomes) + more
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < target:
            if self._stop.is_set() or time.monotonic() > deadline:
                raise TimeoutError(f"the load answered fewer than {more} requests in {timeout}s")
            time.sleep(0.02)

    # -- what happened ------------------------------------------------------------------------

    def between(self, start: float, end: float | None = None) -> list[Outcome]:
        end = float("inf") if end is None else end
        return [o for o in list(self.outcomes) if start <= o.at < end]

    @staticmethod
    def failures(outcomes: Iterable[Outcome]) -> list[Outcome]:
        return [o for o in outcomes if o.status is None or o.status >= 400]

    @staticmethod
    def by_status(outcomes: Iterable[Outcome]) -> Counter[int | None]:
        return Counter(o.status for o in outcomes)

    def acknowledged(self) -> list[PlacedOrder]:
        return [o for o in self.orders if o.acknowledged]

    # -- the load itself ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test by stop()
            self.crash = exc

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.workers * 50, max_keepalive_connections=0)
        # No keep-alive: each request opens its own connection, so the kernel spreads them over
        # both workers the way separate customers would be spread.
        async with httpx.AsyncClient(base_url=self.url, timeout=10, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, n) for n in range(self.workers)))
            # Orders still being retried finish (or give up at their deadline) before we stop.
            while self._retrying:
                await asyncio.gather(*list(self._retrying))

    def _claim(self) -> int | None:
        with self._lock:
            if self._sent >= self.max_requests or self.now() >= self.max_seconds:
                return None
            self._sent += 1
            return self._sent

    async def _worker(self, client: httpx.AsyncClient, number: int) -> None:
        shop = self.shop
        browse = [
            ("stores", "/v1/stores"),
            ("store", f"/v1/stores/{shop.store_id}"),
            ("menu", f"/v1/stores/{shop.store_id}/menu"),
            ("slots", f"/v1/stores/{shop.store_id}/slots?date={shop.slots[0][:10]}"),
        ]
        step = number
        while not self._stop.is_set():
            sequence = self._claim()
            if sequence is None:
                return
            step += 1
            if step % self.order_every == 0:
                await self._order(client, sequence)
            else:
                kind, path = browse[step % len(browse)]
                await self._request(client, kind, "GET", path)
            await asyncio.sleep(self.pause_s)

    async def _request(
        self, client: httpx.AsyncClient, kind: str, method: str, path: str, **kw: Any
    ) -> tuple[Outcome, httpx.Response | None]:
        at, started = self.now(), time.perf_counter()
        try:
            response = await client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            outcome = Outcome(at, kind, None, time.perf_counter() - started, type(exc).__name__)
            self.outcomes.append(outcome)
            return outcome, None
        latency = time.perf_counter() - started
        if response.status_code < 400:
            outcome = Outcome(at, kind, response.status_code, latency)
        else:
            try:
                code = str(response.json()["error"]["code"])
            except Exception:
                code = "not-an-error-envelope"
            outcome = Outcome(at, kind, response.status_code, latency, code, response.content[:500])
        self.outcomes.append(outcome)
        return outcome, response

    async def _order(self, client: httpx.AsyncClient, sequence: int) -> None:
        placed = PlacedOrder(key=f"reliability-{uuid.uuid4()}")
        self.orders.append(placed)
        body = self.shop.order(self.shop.slots[sequence % len(self.shop.slots)])
        if not await self._attempt(client, placed, body) and self.retry_orders:
            # The customer retries on their own time; the worker goes on browsing meanwhile.
            task = asyncio.create_task(self._retry(client, placed, body))
            self._retrying.add(task)
            task.add_done_callback(self._retrying.discard)

    async def _retry(self, client: httpx.AsyncClient, placed: PlacedOrder, body: Any) -> None:
        deadline = time.monotonic() + self.retry_deadline_s
        delay = 0.1
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            if await self._attempt(client, placed, body):
                return

    async def _attempt(self, client: httpx.AsyncClient, placed: PlacedOrder, body: Any) -> bool:
        """One try; True when it settled the order (201, or a refusal retrying cannot fix)."""
        outcome, response = await self._request(
            client,
            "order",
            "POST",
            "/v1/orders",
            json=body,
            headers={"Idempotency-Key": placed.key},
        )
        placed.attempts.append(outcome)
        if response is not None and response.status_code == 201:
            placed.order_id = response.json()["id"]
            placed.token = response.json()["order_token"]
            return True
        return not (outcome.status is None or outcome.status == 503)
