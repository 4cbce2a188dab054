"""The two decisions every booking makes, written once and used by every backend."""

from __future__ import annotations

from datetime import datetime

from service.domain.errors import IdempotencyConflictError, SlotFullError
from service.domain.models import Order


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
