from __future__ import annotations

import pytest

from service.domain import lifecycle
from service.domain.errors import InvalidTransitionError, WrongPickupCodeError
from service.domain.models import OrderStatus as S
from tests.factories import NOW, make_item, make_order, make_store

STAFF_MOVES = [
    (S.PLACED, S.ACCEPTED),
    (S.PLACED, S.REJECTED),
    (S.PLACED, S.CANCELLED),
    (S.ACCEPTED, S.PREPARING),
    (S.ACCEPTED, S.CANCELLED),
    (S.PREPARING, S.READY),
]


def order_in(status: S):  # type: ignore[no-untyped-def]
    store = make_store()
    return make_order(store, make_item(store.id), status=status)


@pytest.mark.parametrize(("current", "target"), STAFF_MOVES)
def test_staff_can_make_every_legal_move(current: S, target: S) -> None:
    moved = lifecycle.transition(order_in(current), target, actor="staff", at=NOW)
    assert moved.status == target
    assert moved.history[-1].status == target
    assert moved.updated_at == NOW


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_every_move_outside_the_table_is_refused(current: S, target: S) -> None:
    if (current, target) in STAFF_MOVES:
        return
    with pytest.raises(InvalidTransitionError):
        lifecycle.transition(order_in(current), target, actor="staff", at=NOW)


@pytest.mark.parametrize("current", [S.PLACED, S.ACCEPTED])
def test_customer_can_cancel_before_preparation(current: S) -> None:
    assert (
        lifecycle.transition(order_in(current), S.CANCELLED, actor="customer", at=NOW).status
        == S.CANCELLED
    )


@pytest.mark.parametrize("current", [S.PREPARING, S.READY, S.PICKED_UP])
def test_customer_cannot_cancel_once_preparation_started(current: S) -> None:
    with pytest.raises(InvalidTransitionError):
        lifecycle.transition(order_in(current), S.CANCELLED, actor="customer", at=NOW)


def test_customer_cannot_accept_their_own_order() -> None:
    with pytest.raises(InvalidTransitionError):
        lifecycle.transition(order_in(S.PLACED), S.ACCEPTED, actor="customer", at=NOW)


def test_pick_up_needs_the_right_code_and_a_ready_order() -> None:
    ready = order_in(S.READY)
    with pytest.raises(WrongPickupCodeError):
        lifecycle.pick_up(ready, "000000", at=NOW)
    assert lifecycle.pick_up(ready, ready.pickup_code, at=NOW).status == S.PICKED_UP
    with pytest.raises(InvalidTransitionError):
        lifecycle.pick_up(order_in(S.PREPARING), "123456", at=NOW)


def test_refusal_says_which_moves_are_allowed() -> None:
    with pytest.raises(InvalidTransitionError) as caught:
        lifecycle.transition(order_in(S.ACCEPTED), S.READY, actor="staff", at=NOW)
    assert caught.value.details["allowed"] == ["cancelled", "preparing"]
