from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest

from service.domain import booking, slots
from service.domain.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    SlotFullError,
    StoreClosedError,
)
from service.domain.models import OpeningInterval, Store
from tests.factories import NOW, make_item, make_order, make_store


def starts(found: list[tuple[datetime, datetime]], fmt: str = "%H:%M%z") -> list[str]:
    return [start.strftime(fmt) for start, _ in found]


def test_a_plain_day_has_evenly_spaced_slots_inside_opening_hours() -> None:
    store = make_store(opening_hours=(OpeningInterval(1, time(7), time(9)),))  # Tuesdays
    found = slots.day_slots(store, date(2026, 12, 1))
    assert starts(found, "%H:%M") == [
        *("07:00", "07:15", "07:30", "07:45"),
        *("08:00", "08:15", "08:30", "08:45"),
    ]
    assert all(end - start == timedelta(minutes=15) for start, end in found)


def test_closed_days_have_no_slots() -> None:
    store = make_store(opening_hours=(OpeningInterval(0, time(7), time(9)),))  # Mondays only
    assert slots.day_slots(store, date(2026, 12, 1)) == []


def new_york_sunday_from_midnight(until: time) -> Store:
    # New York changes its clocks on Sundays, in the small hours.
    return make_store(
        timezone="America/New_York",
        slot_minutes=30,
        opening_hours=(OpeningInterval(6, time(0), until),),
    )


def test_spring_forward_day_loses_the_missing_hour() -> None:
    # 8 March 2026: New York clocks jump from 02:00 to 03:00.
    store = new_york_sunday_from_midnight(until=time(5))
    found = slots.day_slots(store, date(2026, 3, 8))
    labels = starts(found)
    assert len(found) == 8  # 5 wall-clock hours, but only 4 real ones
    assert "02:00-0500" not in labels and "02:30-0500" not in labels
    assert labels[4] == "03:00-0400"


def test_fall_back_day_gains_the_repeated_hour() -> None:
    # 1 November 2026: New York clocks go back from 02:00 to 01:00.
    store = new_york_sunday_from_midnight(until=time(3))
    found = slots.day_slots(store, date(2026, 11, 1))
    assert len(found) == 8  # 3 wall-clock hours, 4 real ones
    starts_utc = [s.astimezone(UTC) for s, _ in found]
    assert len(set(starts_utc)) == 8
    assert starts(found).count("01:00-0400") == 1
    assert starts(found).count("01:00-0500") == 1


def test_fall_back_day_lists_slots_in_the_order_they_happen() -> None:
    # The repeated hour comes after the first 01:00-01:59, not interleaved with it by wall clock.
    store = new_york_sunday_from_midnight(until=time(3))
    found = slots.day_slots(store, date(2026, 11, 1))
    assert starts(found) == [
        *("00:00-0400", "00:30-0400", "01:00-0400", "01:30-0400"),  # summer time (EDT)
        *("01:00-0500", "01:30-0500", "02:00-0500", "02:30-0500"),  # winter time (EST)
    ]
    assert all(
        end.astimezone(UTC) == nxt.astimezone(UTC)
        for (_, end), (nxt, _) in itertools.pairwise(found)
    )


def test_slots_inside_the_lead_time_are_not_bookable() -> None:
    store = make_store(lead_time_minutes=30)
    found = slots.availability(store, NOW.date(), now=NOW, held={})
    by_label = {s.start.strftime("%H:%M"): s.bookable for s in found}
    assert by_label["08:15"] is False
    assert by_label["08:30"] is True


def test_remaining_capacity_counts_held_orders() -> None:
    store = make_store(slot_capacity=3)
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    found = {s.start: s for s in slots.availability(store, NOW.date(), now=NOW, held={start: 3})}
    assert found[start].remaining == 0 and not found[start].bookable
    assert found[start + timedelta(minutes=15)].remaining == 3


def test_a_store_not_accepting_orders_has_no_bookable_slots() -> None:
    store = make_store(accepting_orders=False)
    assert not any(s.bookable for s in slots.availability(store, NOW.date(), now=NOW, held={}))
    with pytest.raises(StoreClosedError):
        slots.check_bookable(store, NOW + timedelta(hours=2), now=NOW)


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (NOW + timedelta(hours=2, minutes=7), "not the start"),
        (NOW, "at least 15 minutes"),
        (NOW - timedelta(days=1), "at least 15 minutes"),
        (datetime(2026, 12, 1, 21, 0, tzinfo=UTC), "not the start"),
        (NOW + timedelta(days=45), "within 30 days"),
    ],
)
def test_unbookable_starts_are_refused_with_the_reason(start: datetime, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        slots.check_bookable(make_store(), start, now=NOW)


def test_a_full_slot_is_refused() -> None:
    with pytest.raises(SlotFullError):
        booking.ensure_room(NOW + timedelta(hours=2), held=2, capacity=2)
    booking.ensure_room(NOW + timedelta(hours=2), held=1, capacity=2)  # one place left: fine


def test_an_idempotent_retry_replays_only_the_same_request() -> None:
    store = make_store()
    order = make_order(store, make_item(store.id))
    assert booking.replay(("fingerprint", order), "fingerprint") is order
    with pytest.raises(IdempotencyConflictError):
        booking.replay(("fingerprint", order), "another request")


def test_an_offset_slot_start_is_normalised_to_utc() -> None:
    start = datetime.fromisoformat("2026-12-01T11:00:00+01:00")  # = 10:00 UTC
    assert slots.check_bookable(make_store(), start, now=NOW) == datetime(
        2026, 12, 1, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "now",
    [NOW - timedelta(days=31), NOW - timedelta(hours=2), NOW, NOW + timedelta(minutes=7)],
    ids=["before the horizon", "before opening", "at a lead-time edge", "between edges"],
)
def test_a_day_s_availability_holds_until_its_next_change_by_the_clock_and_not_after(
    now: datetime,
) -> None:
    store = make_store(lead_time_minutes=30)
    day = NOW.date()
    seen = slots.availability(store, day, now=now, held={})

    change = slots.next_change(store, day, now=now)

    assert change is not None and change >= now
    for moment in (now + (change - now) / 2, change - timedelta(microseconds=1)):
        if moment >= now:
            assert slots.availability(store, day, now=moment, held={}) == seen
    assert slots.availability(store, day, now=change + timedelta(seconds=1), held={}) != seen


def test_a_day_whose_slots_have_all_passed_never_changes_by_the_clock() -> None:
    store = make_store()
    assert slots.next_change(store, NOW.date(), now=NOW + timedelta(hours=13)) is None
