"""A deterministic demo or scaled dataset: the same arguments always give the same data."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

from service.domain import models as m
from service.ports import Dataset

CITIES = [
    ("London", "Europe/London", "GBP"),
    ("New York", "America/New_York", "USD"),
    ("Berlin", "Europe/Berlin", "EUR"),
    ("Sydney", "Australia/Sydney", "AUD"),
    ("Toronto", "America/Toronto", "CAD"),
]
CATEGORIES = {
    "coffee": ["Espresso", "Flat White", "Cappuccino", "Latte", "Cortado", "Mocha", "Americano"],
    "tea": ["Green Tea", "Earl Grey", "Chai Latte", "Matcha Latte", "Mint Tea"],
    "bakery": ["Croissant", "Pain au Chocolat", "Cinnamon Roll", "Banana Bread", "Scone"],
    "sandwiches": ["Ham & Cheese", "Caprese", "Falafel Wrap", "Chicken Pesto", "Egg & Cress"],
    "salads": ["Caesar Salad", "Greek Salad", "Quinoa Bowl", "Noodle Salad"],
    "drinks": ["Orange Juice", "Lemonade", "Sparkling Water", "Iced Tea", "Smoothie"],
}
TAGS = ["vegan", "vegetarian", "gluten-free", "hot", "cold", "popular", "new", "spicy", "nut-free"]
# Past orders end in these states, in roughly these proportions.
FINAL_STATUSES = [m.OrderStatus.PICKED_UP] * 8 + [m.OrderStatus.CANCELLED, m.OrderStatus.REJECTED]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def demo_dataset(
    *, stores: int = 5, items_per_store: int = 40, orders: int = 200, seed: int = 42
) -> Dataset:
    catalog = DemoCatalog(stores=stores, items_per_store=items_per_store, seed=seed)
    return Dataset(catalog.stores, catalog.menu_items, list(catalog.orders(orders)))


class DemoCatalog:
    """Stores and menus at once; orders as a generator, so a million need not fit in memory.
    Orders draw from the same random stream after the catalog: the same arguments always
    give the same data, whichever way it is consumed."""

    def __init__(self, *, stores: int, items_per_store: int, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
        self.stores: list[m.Store] = []
        self.menu_items: list[m.MenuItem] = []
        self.currency_of: dict[str, str] = {}
        for n in range(stores):
            self._add_store(n, items_per_store)
        self.menus: dict[str, list[m.MenuItem]] = {}
        for item in self.menu_items:
            self.menus.setdefault(item.store_id, []).append(item)

    def _add_store(self, n: int, items_per_store: int) -> None:
        rng = self.rng
        city, tz, currency = CITIES[n % len(CITIES)]
        store = m.Store(
            id=_uuid(rng),
            name=f"Pickup {city} #{n // len(CITIES) + 1}",
            address=f"{rng.randint(1, 300)} High Street, {city}",
            timezone=tz,
            slot_minutes=15,
            slot_capacity=rng.choice([4, 5, 6, 8]),
            lead_time_minutes=rng.choice([10, 15, 20]),
            accepting_orders=True,
            opening_hours=tuple(
                m.OpeningInterval(day, time(7, 0), time(20, 0) if day < 5 else time(18, 0))
                for day in range(7)
            ),
        )
        self.stores.append(store)
        self.currency_of[store.id] = currency
        names = [(cat, name) for cat, names in CATEGORIES.items() for name in names]
        for i in range(items_per_store):
            category, name = names[i % len(names)]
            size = ["", " (large)", " (small)", " special"][i // len(names) % 4]
            self.menu_items.append(
                m.MenuItem(
                    id=_uuid(rng),
                    store_id=store.id,
                    name=f"{name}{size}",
                    description=f"Our {name.lower()}, made fresh to order at {store.name}.",
                    category=category,
                    price_cents=rng.randrange(150, 1400, 5),
                    currency=currency,
                    available=rng.random() > 0.05,
                    tags=tuple(sorted(rng.sample(TAGS, rng.randint(0, 3)))),
                )
            )

    def orders(self, count: int) -> Iterator[m.Order]:
        rng = self.rng
        stores = self.stores
        for _ in range(count if stores else 0):
            # Skewed popularity: the first stores get most orders, as real chains do.
            store = stores[min(int(rng.expovariate(1.5)), len(stores) - 1)]
            slot = EPOCH + timedelta(
                days=rng.randrange(300), minutes=15 * rng.randrange(8 * 4, 19 * 4)
            )
            created = slot - timedelta(minutes=rng.randrange(20, 240))
            menu = self.menus[store.id]
            picked = rng.sample(menu, rng.randint(1, min(4, len(menu))))
            lines = tuple(
                m.OrderLine(i.id, i.name, i.price_cents, rng.randint(1, 3)) for i in picked
            )
            status = rng.choice(FINAL_STATUSES)
            yield m.Order(
                id=_uuid(rng),
                store_id=store.id,
                customer_name=rng.choice(["Ada", "Grace", "Linus", "Alan", "Barbara", "Ken"]),
                customer_phone=f"+4477009{rng.randrange(10**5):05d}",
                lines=lines,
                total_cents=sum(line.line_total_cents for line in lines),
                currency=self.currency_of[store.id],
                pickup_slot_start=slot,
                status=status,
                pickup_code=f"{rng.randrange(10**6):06d}",
                order_token=f"{rng.getrandbits(192):048x}",
                note=None,
                created_at=created,
                updated_at=slot,
                history=(
                    m.StatusChange(m.OrderStatus.PLACED, created, "customer"),
                    m.StatusChange(status, slot, "staff"),
                ),
            )
