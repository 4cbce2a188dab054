"""The one error hierarchy. Each class carries a stable machine code; HTTP status is mapped in
exactly one place (`service.http.errors`). Errors about the request as sent (encoding, size,
pace) are transport errors and live in `service.http.transport_errors`."""

from __future__ import annotations

from typing import Any


class PickupError(Exception):
    """Raised when a request cannot be served; the base of every error the service reports."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInputError(PickupError):
    """Raised when a well-formed request breaks a validation rule."""

    code = "validation_failed"


class NotFoundError(PickupError):
    """Raised when an id names nothing."""

    code = "not_found"


class AuthenticationError(PickupError):
    """Raised when credentials are missing or wrong."""

    code = "unauthenticated"


class PermissionDeniedError(PickupError):
    """Raised when valid credentials do not cover the resource."""

    code = "forbidden"


class ConflictError(PickupError):
    """Raised when a request conflicts with the current state."""

    code = "conflict"


class InvalidTransitionError(ConflictError):
    """Raised when an order cannot move from its status to the requested one."""

    code = "invalid_transition"


class SlotFullError(ConflictError):
    """Raised when a pickup slot has no capacity left."""

    code = "slot_full"


class TooManyLiveOrdersError(ConflictError):
    """Raised when one phone number already holds the most live orders a store allows."""

    code = "too_many_live_orders"


class StoreClosedError(ConflictError):
    """Raised when a store is not accepting orders."""

    code = "store_not_accepting_orders"


class IdempotencyConflictError(ConflictError):
    """Raised when an Idempotency-Key is reused with a different request."""

    code = "idempotency_key_reused"


class WrongPickupCodeError(PickupError):
    """Raised when the pickup code does not match the order's."""

    code = "wrong_pickup_code"


class ServiceUnavailableError(PickupError):
    """Raised when a dependency the request needs is unavailable."""

    code = "service_unavailable"
