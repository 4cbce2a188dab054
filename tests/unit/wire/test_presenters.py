"""The response models are the one definition of the wire format: presenters are derived from
them, so what is sent always validates against what is documented."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from pydantic import BaseModel

from service.breaker import AsyncCircuitBreaker
from service.domain.models import (
    MenuItem,
    OpeningInterval,
    Order,
    OrderLine,
    OrderStatus,
    Slot,
    StatusChange,
)
from service.http import presenters
from service.http import schemas as s
from service.usecases.recommend import Recommendation
from tests.factories import make_store

NOW = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
STORE_ID = "0b5c2a8e-4f1d-4c1a-9a55-3f0e2d7c9b11"
ITEM_ID = "6f1c0e7a-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
ORDER_ID = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
ITEM = MenuItem(ITEM_ID, STORE_ID, "Tea", "", "tea", 200, "GBP", True, ("hot",))
ORDER = Order(
    ORDER_ID,
    STORE_ID,
    "Ann",
    "+44 7700 900123",
    (OrderLine(ITEM_ID, "Tea", 200, 2),),
    400,
    "GBP",
    NOW,
    OrderStatus.READY,
    "123456",
    "token",
    None,
    NOW,
    NOW,
    (StatusChange(OrderStatus.ACCEPTED, NOW, "staff"),),
)


def test_every_presenter_sends_exactly_what_its_model_documents() -> None:
    store = make_store(
        opening_hours=(
            OpeningInterval(0, time(7), time(12)),
            OpeningInterval(0, time(13), time(20)),
        ),
    )
    sent: list[tuple[type[BaseModel], dict[str, object]]] = [
        (s.StoreOut, presenters.store(store)),
        (s.MenuItemOut, presenters.menu_item(ITEM)),
        (s.SlotOut, presenters.slot(Slot(NOW, NOW + timedelta(minutes=15), 5, 3, True))),
        (s.OrderOut, presenters.order(ORDER)),
        (s.OrderCreatedOut, presenters.order(ORDER, with_token=True)),
        (
            s.RecommendationOut,
            presenters.recommendation(Recommendation(STORE_ID, [(ITEM, "warm")], "hi", "fallback")),
        ),
        (
            s.BreakerOut,
            presenters.breaker(AsyncCircuitBreaker("openai", fail_max=3, reset_timeout=30)),
        ),
    ]
    for model, body in sent:
        assert list(body) == list(model.model_fields), model.__name__  # same keys, same order
        model.model_validate(body)  # extra="forbid": nothing undocumented is sent
    assert presenters.store(store)["opening_hours"] == {
        "mon": [{"opens": "07:00", "closes": "12:00"}, {"opens": "13:00", "closes": "20:00"}]
    }
    assert "order_token" not in presenters.order(ORDER)
    assert presenters.order(ORDER)["customer"] == {"name": "Ann", "phone": "+44 7700 900123"}
    assert presenters.order(ORDER)["history"][0] == {
        "status": "accepted",
        "at": NOW.isoformat(),
        "actor": "staff",
    }


def test_a_documented_field_the_domain_object_lacks_is_refused_at_import() -> None:
    class WithColour(s.MenuItemOut):
        colour: str

    with pytest.raises(TypeError, match="MenuItem has no 'colour'"):
        presenters.derive(WithColour, MenuItem)


def test_a_new_field_on_both_sides_needs_no_presenter_code() -> None:
    @dataclass
    class Thing:
        id: str
        when: datetime
        status: OrderStatus

    class ThingOut(BaseModel):
        id: str
        when: datetime
        status: OrderStatus

    present = presenters.derive(ThingOut, Thing)
    assert present(Thing("x", NOW, OrderStatus.READY)) == {
        "id": "x",
        "when": NOW.isoformat(),
        "status": "ready",
    }
