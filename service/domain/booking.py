"""The two decisions every booking makes, written once and used by every backend."""

from __future__ import annotations

from datetime import datetime

from service.domain.errors import IdempotencyConflictError, SlotFullError, TooManyLiveOrdersError
from service.domain.models import Order, OrderStatus

# Orders still to be collected: these count against a phone number's cap (a collected,
# cancelled or rejected order frees its place).
ACTIVE_STATUSES = frozenset(
    {OrderStatus.PLACED, OrderStatus.ACCEPTED, OrderStatus.PREPARING, OrderStatus.READY}
)


def phone_key(phone: str) -> str:
    """The digits of a phone number, so `+44 7700 900123` and `+447700900123` are one customer
    (the cap cannot tell a national spelling from an international one)."""
    return "".join(ch for ch in phone if ch.isdigit())


def ensure_under_cap(*, active: int, cap: int | None) -> None:
    """Raise TooManyLiveOrdersError when a phone already holds `cap` active orders here."""
    if cap is not None and active >= cap:
        raise TooManyLiveOrdersError(
            f"this phone number already has {cap} orders waiting at this store; collect or "
            "cancel one first",
            details={"max_live_orders_per_phone": cap},
        )


def ensure_room(slot_start: datetime, *, held: int, capacity: int) -> None:
    """Raise SlotFullError unless a slot holding `held` live orders can take one more."""
    if held >= capacity:
        raise SlotFullError(
            "this pickup slot is full; choose another",
            details={"pickup_slot_start": slot_start.isoformat(), "capacity": capacity},
        )


def replay(recorded: tuple[str, Order], fingerprint: str) -> Order:
    """The order an Idempotency-Key first booked, when the retry is the same request.

    `recorded` is (fingerprint of the first request, its order); a different request under the
    same key raises IdempotencyConflictError."""
    first_fingerprint, order = recorded
    if first_fingerprint != fingerprint:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used with a different request"
        )
    return order
