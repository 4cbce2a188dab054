"""The one error hierarchy. Each class carries a stable machine code; HTTP status is mapped in
exactly one place (`service.http.errors`)."""

from __future__ import annotations

from typing import Any


class PickupError(Exception):
    """Raised when a request cannot be served; the base of every error the service reports."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class MalformedRequestError(PickupError):
    """Raised when a request body is not parseable (bad JSON, bad encoding)."""

    code = "malformed_request"


class InvalidInputError(PickupError):
    """Raised when a well-formed request breaks a validation rule."""

    code = "validation_failed"


class UnsupportedMediaTypeError(PickupError):
    """Raised when a body is sent with a content type other than JSON."""

    code = "unsupported_media_type"


class PayloadTooLargeError(PickupError):
    """Raised when a request body exceeds the configured maximum."""

    code = "payload_too_large"


class RequestTimeoutError(PickupError):
    """Raised when a client sends its request body too slowly."""

    code = "request_timeout"


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


class StoreClosedError(ConflictError):
    """Raised when a store is not accepting orders."""

    code = "store_not_accepting_orders"


class IdempotencyConflictError(ConflictError):
    """Raised when an Idempotency-Key is reused with a different request."""

    code = "idempotency_key_reused"


class WrongPickupCodeError(PickupError):
    """Raised when the pickup code does not match the order's."""

    code = "wrong_pickup_code"


class RateLimitedError(PickupError):
    """Raised when a client exceeds its request budget."""

    code = "rate_limited"


class ServiceUnavailableError(PickupError):
    """Raised when a dependency the request needs is unavailable."""

    code = "service_unavailable"
