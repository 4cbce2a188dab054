"""Wire models. Request models validate input; response models document output (OpenAPI) and
let tests check that what the service sends matches what it documents."""

from __future__ import annotations

import functools
from datetime import datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from service.domain.models import OrderStatus
from service.http.fields import (
    HHMM,
    Cents,
    Currency,
    MultilineText,
    Name,
    QueryDate,
    Text,
    Weekday,
    _within_years,
)


def _refuse_nul(value: Any) -> Any:
    # PostgreSQL cannot store NUL in text, and no person types one: a client mistake (422).
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueError("must not contain NUL characters")
    return value


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    _no_nul = field_validator("*")(_refuse_nul)


class Interval(Input):
    opens: str = Field(pattern=HHMM.pattern, examples=["07:00"])
    closes: str = Field(pattern=HHMM.pattern, examples=["20:00"])

    @model_validator(mode="after")
    def _closes_after_opens(self) -> Interval:
        if time.fromisoformat(self.closes) <= time.fromisoformat(self.opens):
            raise ValueError("closes must be later than opens on the same day")
        return self


OpeningHours = dict[Weekday, Annotated[list[Interval], Field(max_length=4)]]


@functools.cache
def _zone_names() -> frozenset[str]:
    # "localtime" is whatever the host is set to, not a zone a store can name.
    return frozenset(available_timezones() - {"localtime", "posixrules"})


def _check_timezone(value: str) -> str:
    # Membership, not "does ZoneInfo() open it": ZoneInfo("America") raises IsADirectoryError
    # and other spellings other OSErrors, and a file name is not a client's to choose.
    if value not in _zone_names():
        raise ValueError("must be an IANA time zone such as Europe/London")
    return value


class StoreIn(Input):
    name: Name
    address: Text = Field(min_length=1, max_length=300)
    timezone: str = Field(max_length=64, examples=["Europe/London"])
    slot_minutes: int = Field(15, ge=5, le=240)
    slot_capacity: int = Field(5, ge=1, le=1000)
    lead_time_minutes: int = Field(15, ge=0, le=1440)
    accepting_orders: bool = True
    opening_hours: OpeningHours

    _tz = field_validator("timezone")(_check_timezone)


class StorePatch(Input):
    name: Name | None = None
    address: Text | None = Field(None, min_length=1, max_length=300)
    timezone: str | None = Field(None, max_length=64)
    slot_minutes: int | None = Field(None, ge=5, le=240)
    slot_capacity: int | None = Field(None, ge=1, le=1000)
    lead_time_minutes: int | None = Field(None, ge=0, le=1440)
    accepting_orders: bool | None = None
    opening_hours: OpeningHours | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class MenuItemIn(Input):
    name: Name
    description: MultilineText = Field("", max_length=1000)
    category: Text = Field(min_length=1, max_length=50)
    price_cents: Cents
    currency: Currency
    available: bool = True
    tags: list[Annotated[Text, Field(min_length=1, max_length=30)]] = Field([], max_length=20)


class MenuItemPatch(Input):
    name: Name | None = None
    description: MultilineText | None = Field(None, max_length=1000)
    category: Text | None = Field(None, min_length=1, max_length=50)
    price_cents: Cents | None = None
    currency: Currency | None = None
    available: bool | None = None
    tags: list[Annotated[Text, Field(min_length=1, max_length=30)]] | None = Field(
        None, max_length=20
    )


class Customer(Input):
    name: Name
    phone: str = Field(pattern=r"^\+?[0-9][0-9 ()-]{5,19}$", examples=["+44 7700 900123"])


class OrderLineIn(Input):
    menu_item_id: UUID
    quantity: int = Field(ge=1, le=50)


class OrderIn(Input):
    store_id: UUID
    pickup_slot_start: Annotated[AwareDatetime, AfterValidator(_within_years)] = Field(
        description="Start of a slot from GET /v1/stores/{store_id}/slots, with UTC offset"
    )
    customer: Customer
    items: list[OrderLineIn] = Field(min_length=1, max_length=50)
    note: MultilineText | None = Field(None, max_length=500)

    @field_validator("items")
    @classmethod
    def _distinct_items(cls, items: list[OrderLineIn]) -> list[OrderLineIn]:
        ids = [line.menu_item_id for line in items]
        if len(set(ids)) != len(ids):
            raise ValueError("each menu item may appear once; use quantity for more")
        return items


class StatusIn(Input):
    status: Literal["accepted", "preparing", "ready", "rejected", "cancelled"]


class PickupIn(Input):
    pickup_code: str = Field(pattern=r"^\d{6}$")


class RecommendationIn(Input):
    preferences: MultilineText = Field(max_length=500, examples=["something vegan and hot"])
    budget_cents: Cents | None = None
    party_size: int | None = Field(None, ge=1, le=20)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200)


class SlotsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    date: QueryDate


class OrdersQuery(PageQuery):
    status: OrderStatus | None = None
    date: QueryDate | None = None


# -- responses -----------------------------------------------------------------------------


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntervalOut(Output):
    opens: str
    closes: str


class StoreOut(Output):
    id: UUID
    name: str
    address: str
    timezone: str
    slot_minutes: int
    slot_capacity: int
    lead_time_minutes: int
    accepting_orders: bool
    opening_hours: dict[Weekday, list[IntervalOut]]


class MenuItemOut(Output):
    id: UUID
    store_id: UUID
    name: str
    description: str
    category: str
    price_cents: int
    currency: str
    available: bool
    tags: list[str]


class SlotOut(Output):
    start: datetime
    end: datetime
    capacity: int
    remaining: int
    bookable: bool


class OrderLineOut(Output):
    menu_item_id: UUID
    name: str
    unit_price_cents: int
    quantity: int
    line_total_cents: int


class StatusChangeOut(Output):
    status: OrderStatus
    at: datetime
    actor: str


class CustomerOut(Output):
    name: str
    phone: str


class OrderOut(Output):
    id: UUID
    store_id: UUID
    status: OrderStatus
    customer: CustomerOut
    items: list[OrderLineOut]
    total_cents: int
    currency: str
    pickup_slot_start: datetime
    note: str | None
    created_at: datetime
    updated_at: datetime
    history: list[StatusChangeOut]


PICKUP_CODE_ONLY_FOR_THE_CUSTOMER = (
    "The customer's proof at the counter: shown only to the customer (the answer to the POST "
    "and reads with X-Order-Token), never to staff, who type what the customer shows them"
)


class OrderViewOut(OrderOut):
    """An order as its customer or staff sees it; only the customer's view has the code."""

    pickup_code: str = Field(default="", description=PICKUP_CODE_ONLY_FOR_THE_CUSTOMER)


class OrderCreatedOut(OrderOut):
    pickup_code: str = Field(description=PICKUP_CODE_ONLY_FOR_THE_CUSTOMER)
    order_token: str = Field(description="Secret for X-Order-Token; shown only here")


class StoreList(Output):
    items: list[StoreOut]
    next_cursor: str | None


class MenuList(Output):
    items: list[MenuItemOut]
    next_cursor: str | None


class SlotList(Output):
    items: list[SlotOut]
    next_cursor: str | None


class OrderList(Output):
    items: list[OrderOut]
    next_cursor: str | None


class RecommendedItemOut(Output):
    menu_item_id: UUID
    name: str
    price_cents: int
    reason: str


class RecommendationOut(Output):
    store_id: UUID
    items: list[RecommendedItemOut] = Field(min_length=1, max_length=5)
    message: str
    source: Literal["openai", "fallback"]


class BreakerOut(Output):
    name: str
    state: Literal["closed", "open", "half_open"]
    fail_counter: int
    fail_max: int
    opened_at: datetime | None
    reset_timeout_s: float
    last_error_class: str | None


class BreakerList(Output):
    items: list[BreakerOut]
    next_cursor: str | None


class Health(Output):
    status: Literal["ok"]


class Readiness(Output):
    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, dict[str, Any]]


class ErrorBody(Output):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(Output):
    error: ErrorBody
