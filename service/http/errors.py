"""The one place that maps errors to HTTP statuses and the JSON envelope."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from service.domain import errors as e
from service.http import transport_errors as t
from service.http.pickup_guard import PickupAttemptsExhaustedError
from service.http.responses import error_response

STATUS: list[tuple[type[e.PickupError], int]] = [
    (t.MalformedRequestError, 400),
    (e.AuthenticationError, 401),
    (e.PermissionDeniedError, 403),
    (e.WrongPickupCodeError, 403),
    (e.NotFoundError, 404),
    (t.RequestTimeoutError, 408),
    (e.ConflictError, 409),
    (t.PayloadTooLargeError, 413),
    (t.UnsupportedMediaTypeError, 415),
    (e.InvalidInputError, 422),
    (PickupAttemptsExhaustedError, 429),
    (e.ServiceUnavailableError, 503),
]
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}

log = structlog.get_logger("service.http")


def status_for(exc: e.PickupError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def pickup_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.PickupError)
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": str(exc.details["retry_after_s"])}
    return error_response(status, exc.code, exc.message, exc.details, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = {
        404: "no route matches this path",
        405: f"method {request.method} is not allowed here",
    }.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, message, None, dict(exc.headers or {}))


async def client_disconnected(request: Request, exc: Exception) -> Response:
    # The client hung up mid-request: nobody will read an answer, and it is not our failure.
    # 499 (nginx's "client closed request") keeps it out of the 5xx counts.
    log.info("client_disconnected", path=request.url.path, method=request.method)
    return Response(status_code=499)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # Our bug, not the client's: log everything, tell the client nothing internal.
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    return error_response(500, "internal_error", "an unexpected error occurred", None)
