"""From the endpoint list to the Starlette routes the app dispatches with (and the limiter
decides with: service/ratelimit/middleware.py is handed these very objects)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from service.http.endpoint import Endpoint, Handler


class PrintableRoute(Route):
    """A Route that matches no path holding an unprintable character (control, format or
    line-separator characters: `%0A`, `%00`, a bidi override).

    Starlette's route regex ends in `$`, which also matches before a final newline, so
    `/v1/orders%0A` would otherwise be dispatched to the order endpoint. No path we serve
    contains such a character; such a request gets the router's 404 instead.

    The router tries its routes in order, a regex each; a path that does not start with the
    template's literal part (up to its first parameter) is refused before that regex, which
    could only fail: an order read no longer runs the seven store routes' regexes first."""

    def __init__(self, path: str, endpoint: Handler, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.literal_prefix = path.split("{", 1)[0]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # The route path is the end of scope["path"] (after root_path, which the server sets).
        if scope["type"] == "http":
            path: str = scope["path"]
            if not scope.get("root_path") and not path.startswith(self.literal_prefix):
                return Match.NONE, {}
            if not path.isprintable():
                return Match.NONE, {}
        return super().matches(scope)


def routes_by_path(endpoints: list[Endpoint]) -> list[BaseRoute]:
    """One Route per path carrying all its methods, so a 405 lists every method the path
    serves in Allow (a Route per method would list only the first one matched). Each handler
    is followed by the cache invalidation its endpoint declares (Endpoint.serve)."""
    by_path: dict[str, dict[str, Handler]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, {})[ep.method] = ep.serve()

    def dispatcher(handlers: dict[str, Handler]) -> Handler:
        async def dispatch(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)

        return dispatch

    return [PrintableRoute(path, dispatcher(h), methods=list(h)) for path, h in by_path.items()]
