"""Pickup slots: wall-clock opening hours turned into real instants, DST included.

Slots are stepped in absolute time from the opening instant, so a day that loses an hour to
daylight saving has one hour fewer of slots and a day that gains one has one hour more, and no
slot is ever labelled with a wall-clock time that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.errors import InvalidInputError, StoreClosedError
from service.domain.models import Slot, Store

BOOKING_HORIZON = timedelta(days=30)


def day_slots(store: Store, day: date) -> list[tuple[datetime, datetime]]:
    tz = ZoneInfo(store.timezone)
    step = timedelta(minutes=store.slot_minutes)
    result: list[tuple[datetime, datetime]] = []
    for interval in store.opening_hours:
        if interval.weekday != day.weekday():
            continue
        opens = datetime.combine(day, interval.opens, tzinfo=tz).astimezone(UTC)
        closes = datetime.combine(day, interval.closes, tzinfo=tz).astimezone(UTC)
        start = opens
        while start + step <= closes:
            result.append((start.astimezone(tz), (start + step).astimezone(tz)))
            start += step
    # Aware datetimes sharing one tzinfo compare by wall clock (fold ignored), which would
    # interleave the two passes through a repeated hour: order by the instant itself.
    result.sort(key=lambda slot: slot[0].astimezone(UTC))
    return result


def availability(
    store: Store, day: date, *, now: datetime, held: Mapping[datetime, int]
) -> list[Slot]:
    """Slots of `day` with what is left; `held` maps a slot start (any tz) to live orders in it."""
    earliest = now + timedelta(minutes=store.lead_time_minutes)
    held_utc = {start.astimezone(UTC): count for start, count in held.items()}
    slots = []
    for start, end in day_slots(store, day):
        remaining = max(store.slot_capacity - held_utc.get(start.astimezone(UTC), 0), 0)
        bookable = (
            store.accepting_orders and remaining > 0 and earliest <= start <= now + BOOKING_HORIZON
        )
        slots.append(Slot(start, end, store.slot_capacity, remaining, bookable))
    return slots


def next_change(store: Store, day: date, *, now: datetime) -> datetime | None:
    """The first instant, from `now` on, at which `availability` of `day` changes by the clock
    alone: a slot enters the booking horizon (at start - horizon), or stops being bookable
    (just after start - lead time; that instant itself is returned). None when no slot of that
    day ever will again. Orders and store edits change it too, but not by the clock."""
    lead = timedelta(minutes=store.lead_time_minutes)
    changes = [
        instant
        for start, _ in day_slots(store, day)
        for instant in (start - BOOKING_HORIZON, start - lead)
        if instant >= now
    ]
    return min(changes, default=None)


def check_bookable(store: Store, start: datetime, *, now: datetime) -> datetime:
    """Return the slot start normalised to UTC, or raise why it cannot be booked. Whether the
    slot still has room is decided by `booking.ensure_room`, atomically, in the repository."""
    if start.tzinfo is None:
        raise _slot_error("pickup_slot_start must include a UTC offset")
    start = start.astimezone(UTC)
    if not store.accepting_orders:
        raise StoreClosedError("this store is not accepting orders right now")
    local_day = start.astimezone(ZoneInfo(store.timezone)).date()
    if all(s.astimezone(UTC) != start for s, _ in day_slots(store, local_day)):
        raise _slot_error(
            "pickup_slot_start is not the start of one of this store's slots; "
            "see GET /v1/stores/{store_id}/slots"
        )
    earliest = now + timedelta(minutes=store.lead_time_minutes)
    if start < earliest:
        raise _slot_error(
            f"pickup_slot_start must be at least {store.lead_time_minutes} minutes from now"
        )
    if start > now + BOOKING_HORIZON:
        raise _slot_error(f"pickup_slot_start must be within {BOOKING_HORIZON.days} days")
    return start


def _slot_error(message: str) -> InvalidInputError:
    return InvalidInputError(message, details=[{"field": "pickup_slot_start", "message": message}])
