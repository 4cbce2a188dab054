"""An endpoint is declared once; Starlette routes, the OpenAPI document, the limiter's route
table and the cache invalidation after writes all come from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from service.domain.ids import canonical_id
from service.http.auth import principal
from service.http.context import context
from service.usecases.access import require_credentials

Handler = Callable[[Request], Awaitable[Response]]
# The named request budgets (service/app.py `rate_limit_budgets` gives their numbers). Every
# limited request spends the per-client "default" budget; an endpoint naming another budget
# spends that one too. "exempt" endpoints (probes, metrics) are never limited.
Budget = Literal["exempt", "default", "orders", "ai", "pickup-per-order"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Auth = Literal["public", "staff", "order", "admin", "metrics", "metrics-optional"]
# What a request can fail with before its handler decides anything, by what the endpoint reads
# (service/http/parsing.py): a body (not JSON 400, too large 413, wrong type 415, invalid 422), a
# query (422), an id in the path (404: an id that is not a UUID names nothing) and credentials.
BODY_ERRORS = (400, 413, 415, 422)
QUERY_ERRORS = (422,)
PATH_ID_ERRORS = (404,)
AUTH_ERRORS: dict[Auth, tuple[int, ...]] = {
    "staff": (401, 403),
    "order": (401, 403),
    "admin": (401, 403),
    "metrics": (401,),
    "metrics-optional": (401,),
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: type[BaseModel] | None
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # "metrics-optional": /metrics without METRICS_TOKEN, where a bearer token is accepted and not
    # needed; the document still shows the scheme an operator switches on.
    auth: Auth = "public"
    # Error statuses the handler itself may answer (409 for a refused transition, say); those
    # its body, query, path and auth imply are added by `error_statuses`.
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()  # request headers it reads, for the document
    rate_limit: Budget = "default"
    # Cache entities a successful call changes, as templates over the path parameters
    # ("menu:{store_id}", service/http/caching.py). Writes must say, even if it is nothing.
    invalidates: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.method in WRITE_METHODS and self.invalidates is None:
            raise ValueError(
                f"{self.method} {self.path} must declare what it invalidates (() for nothing)"
            )

    def error_statuses(self) -> tuple[int, ...]:
        """Every error status this endpoint can answer by itself, in ascending order."""
        implied = [
            *(BODY_ERRORS if self.body is not None else ()),
            *(QUERY_ERRORS if self.query is not None else ()),
            *(PATH_ID_ERRORS if "{" in self.path else ()),
            *AUTH_ERRORS.get(self.auth, ()),
        ]
        return tuple(sorted({*implied, *self.errors}))

    def serve(self) -> Handler:
        """The handler, preceded by the credentials check its `auth` declares and followed on
        success by the invalidation this endpoint declares."""
        handler = self._credentials_first(self.handler)
        if not self.invalidates:
            return handler
        templates = self.invalidates

        async def serve_and_invalidate(request: Request) -> Response:
            response = await handler(request)
            if response.status_code < 400:
                ids = {k: canonical_id(v) or v for k, v in request.path_params.items()}
                await context(request).cache.invalidate(*(t.format_map(ids) for t in templates))
            return response

        return serve_and_invalidate

    def _credentials_first(self, handler: Handler) -> Handler:
        """A request without credentials of the declared kind is a 401 before anything is looked
        up or parsed, so the answer never depends on whether the id names something (an
        anonymous probe learns nothing about which orders or stores exist)."""
        if self.auth not in ("staff", "order", "admin"):
            return handler
        order_token = self.auth == "order"

        async def checked(request: Request) -> Response:
            # A malformed or unknown key is a 401 in principal() already.
            require_credentials(principal(request), order_token=order_token)
            return await handler(request)

        return checked
