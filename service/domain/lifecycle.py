"""Order lifecycle: placed -> accepted -> preparing -> ready -> picked_up, with cancel/reject."""

from __future__ import annotations

import hmac
from dataclasses import replace
from datetime import datetime
from typing import Literal

from service.domain.errors import InvalidTransitionError, WrongPickupCodeError
from service.domain.models import Order, OrderStatus, StatusChange

Actor = Literal["customer", "staff"]

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PLACED: frozenset({S.ACCEPTED, S.CANCELLED, S.REJECTED}),
    S.ACCEPTED: frozenset({S.PREPARING, S.CANCELLED}),
    S.PREPARING: frozenset({S.READY}),
    S.READY: frozenset({S.PICKED_UP}),
    S.PICKED_UP: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}
# Customers may only cancel; picked_up goes through `pick_up` because it needs the code.
ALLOWED_BY: dict[Actor, frozenset[OrderStatus]] = {
    "customer": frozenset({S.CANCELLED}),
    "staff": frozenset({S.ACCEPTED, S.PREPARING, S.READY, S.REJECTED, S.CANCELLED}),
}


def transition(order: Order, target: OrderStatus, *, actor: Actor, at: datetime) -> Order:
    if target not in ALLOWED_BY[actor] or target not in TRANSITIONS[order.status]:
        allowed = sorted(s.value for s in TRANSITIONS[order.status] & ALLOWED_BY[actor])
        raise InvalidTransitionError(
            f"cannot move an order from {order.status.value} to {target.value}",
            details={"from": order.status.value, "to": target.value, "allowed": allowed},
        )
    return _moved(order, target, actor, at)


def pick_up(order: Order, code: str, *, at: datetime) -> Order:
    if S.PICKED_UP not in TRANSITIONS[order.status]:
        raise InvalidTransitionError(
            f"cannot pick up an order that is {order.status.value}",
            details={"from": order.status.value, "to": S.PICKED_UP.value, "allowed": []},
        )
    if not hmac.compare_digest(code.encode(), order.pickup_code.encode()):
        raise WrongPickupCodeError("the pickup code does not match this order")
    return _moved(order, S.PICKED_UP, "staff", at)


def _moved(order: Order, target: OrderStatus, actor: str, at: datetime) -> Order:
    return replace(
        order,
        status=target,
        updated_at=at,
        history=(*order.history, StatusChange(status=target, at=at, actor=actor)),
    )
