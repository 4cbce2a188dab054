"""One send wrapper for every layer that adds response headers.

The request context (X-Request-ID, the status it logs), the security headers, the app's last
resort for errors (which must know whether a response has started) and the rate limiter (its
RateLimit fields) each wrapped `send` in a function of their own: four extra calls per message,
twice per response, on every request. Now the outermost of them wraps `send` once and keeps a
`ResponseStart` in the scope; the layers inside it add their fields to that record and pass
`send` on untouched. Each layer still works alone (then it is the outermost).

At the response start the record adds, in this order: the default fields (security headers:
only when the app set none of them itself, else those it did not set, minus the removed ones),
then the appended fields (request id, rate-limit fields) as raw pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Message, Scope, Send

SCOPE_KEY = "pickup.response_start"
RawHeaders = list[tuple[bytes, bytes]]


class DefaultHeaders:
    """Fields a response gets unless the app set them itself; `removed` are dropped then."""

    __slots__ = ("raw", "removed", "special")

    def __init__(self, raw: RawHeaders, removed: Sequence[bytes] = ()) -> None:
        self.raw = raw
        self.removed = frozenset(removed)
        self.special = frozenset(name for name, _ in raw) | self.removed


class ResponseStart:
    """What one request's response start will carry, and what it was once sent."""

    __slots__ = ("appended", "defaults", "started", "status")

    def __init__(self) -> None:
        self.appended: RawHeaders = []
        self.defaults: DefaultHeaders | None = None
        self.started = False
        self.status = 500  # until a response starts: the server would answer 500

    def headers(self, given: Sequence[tuple[bytes, bytes]]) -> RawHeaders:
        headers = list(given)
        defaults = self.defaults
        if defaults is not None:
            if not any(name.lower() in defaults.special for name, _ in headers):
                headers += defaults.raw
            else:
                present = {name.lower() for name, _ in headers}
                headers = [(n, v) for n, v in headers if n.lower() not in defaults.removed]
                headers += [(n, v) for n, v in defaults.raw if n not in present]
        headers += self.appended
        return headers


def response_start(scope: Scope, send: Send) -> tuple[ResponseStart, Send]:
    """The request's record and the `send` to call the next layer with: the first layer to ask
    gets a wrapped `send`, every layer inside it the record alone and its own `send` back."""
    found: ResponseStart | None = scope.get(SCOPE_KEY)
    if found is not None:
        return found, send
    start = scope[SCOPE_KEY] = ResponseStart()

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.started = True
            start.status = message["status"]
            message["headers"] = start.headers(message.get("headers", ()))
        await send(message)

    return start, send_with_headers
