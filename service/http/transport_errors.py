"""Errors about the request as sent over HTTP (its encoding, size and pace), not about the
domain. They share `PickupError`'s code/message/details so `service.http.errors` maps them
with the rest."""

from __future__ import annotations

from service.domain.errors import PickupError


class MalformedRequestError(PickupError):
    """Raised when a request body is not parseable (bad JSON, bad encoding)."""

    code = "malformed_request"


class UnsupportedMediaTypeError(PickupError):
    """Raised when a body is sent with a content type other than JSON."""

    code = "unsupported_media_type"


class PayloadTooLargeError(PickupError):
    """Raised when a request body exceeds the configured maximum."""

    code = "payload_too_large"


class RequestTimeoutError(PickupError):
    """Raised when a client sends its request body too slowly."""

    code = "request_timeout"
