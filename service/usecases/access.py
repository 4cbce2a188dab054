"""Who may do what. Credentials are resolved by the HTTP layer into a Principal."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from service.domain.errors import AuthenticationError, PermissionDeniedError
from service.domain.models import Order


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["anonymous", "staff", "admin"]
    store_id: str | None = None  # a staff key scoped to one store
    order_token: str | None = None  # presented with X-Order-Token

    def can_manage(self, store_id: str) -> bool:
        return self.kind == "admin" or (self.kind == "staff" and self.store_id in (None, store_id))


ANONYMOUS = Principal("anonymous")


def require_credentials(principal: Principal, *, order_token: bool) -> None:
    """Some credential is presented (a staff key or admin token, or with `order_token` an
    order's token); whether it covers the target is decided after the lookup. Checked before
    anything is looked up, so an anonymous answer never depends on what exists."""
    if principal.kind == "anonymous" and not (order_token and principal.order_token):
        raise AuthenticationError(
            "send the order's token in X-Order-Token, or a staff key in Authorization"
            if order_token
            else "a staff API key is required (Authorization: Bearer <key>)"
        )


def require_staff(principal: Principal, store_id: str | None) -> None:
    """store_id None means an action on every store (creating one): needs an unscoped key."""
    if principal.kind == "anonymous":
        raise AuthenticationError("a staff API key is required (Authorization: Bearer <key>)")
    if principal.kind == "admin":
        return
    if store_id is None and principal.store_id is not None:
        raise PermissionDeniedError("this staff key is scoped to one store")
    if store_id is not None and not principal.can_manage(store_id):
        raise PermissionDeniedError("this staff key does not cover this store")


def require_admin(principal: Principal) -> None:
    if principal.kind == "anonymous":
        raise AuthenticationError("the admin token is required (Authorization: Bearer <token>)")
    if principal.kind != "admin":
        raise PermissionDeniedError("this endpoint needs the admin token, not a staff key")


def require_order_access(principal: Principal, order: Order) -> Literal["customer", "staff"]:
    if principal.kind != "anonymous":
        require_staff(principal, order.store_id)
        return "staff"
    if principal.order_token is None:
        raise AuthenticationError(
            "send the order's token in X-Order-Token, or a staff key in Authorization"
        )
    if not hmac.compare_digest(principal.order_token.encode(), order.order_token.encode()):
        raise PermissionDeniedError("this token does not belong to this order")
    return "customer"
