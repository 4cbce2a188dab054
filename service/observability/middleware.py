"""Per-request context (request id, access log, HTTP metrics) and the /metrics endpoint."""

from __future__ import annotations

import hmac
import itertools
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from service.envelope import error_response
from service.observability import accesslog
from service.observability.logging import REQUEST_ID
from service.observability.metrics import Metrics
from service.response_headers import response_start

REQUEST_ID_HEADER = "x-request-id"
_HEADER_NAME = REQUEST_ID_HEADER.encode("latin-1")
UNMATCHED_ROUTE = "unmatched"

# Ids from clients end up in logs and headers: a strict alphabet rules out log injection and
# header splitting, and the length cap keeps log lines bounded.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_TRACEPARENT_HEADER = b"traceparent"
# Version 00's layout; a later version may append fields after the flags.
_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<parent>[0-9a-f]{16})-[0-9a-f]{2}"
    r"(?:-[^\s]*)?"
)


class AccessLogger(Protocol):
    def info(self, event: str, **kw: Any) -> Any: ...


def route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics have one series per route, not per URL."""
    route = scope.get("route")
    path_format = getattr(route, "path_format", None)
    if not isinstance(path_format, str):
        return UNMATCHED_ROUTE
    # Starlette records the innermost matched route, whose template lacks the prefixes of the
    # Mounts above it; each Mount appended the part of the path it matched to root_path.
    root_path: str = scope.get("root_path", "")
    app_root_path: str = scope.get("app_root_path", root_path)
    prefix = root_path[len(app_root_path) :]
    if isinstance(route, Mount):
        # Nothing inside the mount claimed the path (or the mount wraps a plain app).
        return prefix + "/{path}"
    return prefix + path_format


def trace_id_of(traceparent: str) -> str | None:
    """The trace-id of a valid W3C `traceparent` (version-traceid-parentid-flags), else None."""
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if match is None or match["version"] == "ff":
        return None
    if set(match["trace"]) == {"0"} or set(match["parent"]) == {"0"}:
        return None
    return str(match["trace"])


def _incoming_request_id(scope: Scope) -> str | None:
    """The client's X-Request-ID when valid, else the trace-id of its W3C traceparent, so logs
    join the caller's distributed trace."""
    trace_id: str | None = None
    for name, value in scope["headers"]:
        if name == _HEADER_NAME:
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
        elif name == _TRACEPARENT_HEADER and trace_id is None:
            trace_id = trace_id_of(value.decode("latin-1"))
    return trace_id


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        logger: AccessLogger | None = None,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # The bytes writer configure_logging installed, unless a logger is given (tests) or
        # logging is not set up for it; then lines go through structlog.
        self.writer = accesslog.current() if logger is None and access_log else None
        self.logger: AccessLogger = logger or structlog.get_logger("access")
        self.access_log = access_log
        # A random per-process prefix and a counter: unique across processes and restarts,
        # and ~20x cheaper than uuid4(), whose os.urandom call showed up in profiles.
        self._id_prefix = uuid.uuid4().hex[:16]
        self._id_counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = (
            _incoming_request_id(scope) or f"{self._id_prefix}{next(self._id_counter):016x}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        # The one send wrapper of the header layers (service/response_headers.py) appends the
        # id as a raw pair (this middleware owns the field) and records the status, which stays
        # 500 if the app raises before starting a response: the server will answer 500.
        start, send = response_start(scope, send)
        start.appended.append((_HEADER_NAME, request_id.encode("latin-1")))

        # Every line logged while serving this request carries its id (logging.add_request_id).
        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send)
        finally:
            status = start.status
            duration_s = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe_request(scope["method"], route, status, duration_s)
            if self.writer is not None:
                self.writer.write(
                    scope["method"], route, scope["path"], status, duration_s, request_id
                )
            elif self.access_log:
                self.logger.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(duration_s * 1000, 3),
                )
            REQUEST_ID.reset(token)


def metrics_endpoint(
    metrics: Metrics, token: str | None = None
) -> Callable[[Request], Awaitable[Response]]:
    if token == "":
        raise ValueError("the metrics token must not be empty; pass None to disable the check")
    expected = None if token is None else token.encode()

    # Its name is the operationId in /openapi.json.
    async def get_metrics(request: Request) -> Response:
        if expected is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            # compare_digest keeps the comparison time independent of how much of the token
            # matched; the scheme is not secret.
            if not (scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), expected)):
                return error_response(
                    401,
                    "unauthenticated",
                    "a valid bearer token is required for /metrics",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        await metrics.refresh()
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return get_metrics
