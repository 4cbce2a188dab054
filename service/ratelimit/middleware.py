"""Per-client and per-route rate limits, enforced before the app sees the request.

Headers follow draft-7 of the IETF RateLimit fields by default (`headers="draft-7"`):
`RateLimit-Policy: 100;w=900` and `RateLimit: limit=100, remaining=37, reset=412`, one combined
field that is trivial to parse and the form express-rate-limit ships as `draft-7`.
`headers="draft-8"` emits the newer structured-field form with a named policy instead.
Only the most restrictive policy that applied is advertised, because that is the one that will
refuse the client first.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.domain.ids import canonical_id
from service.envelope import error_response
from service.ratelimit.identity import ClientIdentity
from service.ratelimit.limiter import Decision, Limiter, LimiterUnavailable, RateLimit
from service.response_headers import response_start

HeaderDraft = Literal["draft-7", "draft-8"]


@dataclass(frozen=True, slots=True)
class KeyContext:
    client: str
    path_params: Mapping[str, str]
    scope: Scope


KeyFunc = Callable[[KeyContext], str]


def by_client(ctx: KeyContext) -> str:
    return ctx.client


def by_path_param(name: str) -> KeyFunc:
    """Key by one path parameter (e.g. the order id), whoever the client is."""

    def key(ctx: KeyContext) -> str:
        return _canonical_id(ctx.path_params[name])

    return key


class RoutePolicy(NamedTuple):
    method: str  # "*" for any
    # A Starlette template ("/v1/orders/{order_id}/pickup"), matched exactly as Starlette's router
    # matches it; or a compiled regex, which must match the whole route path.
    path: str | re.Pattern[str]
    policy: RateLimit
    key_func: KeyFunc = by_client


RouteSpec = (
    RoutePolicy
    | tuple[str, str | re.Pattern[str], RateLimit]
    | tuple[str, str | re.Pattern[str], RateLimit, KeyFunc]
)


class _Check(NamedTuple):
    name: str
    policy: RateLimit
    key: str


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: Limiter,
        default_policy: RateLimit | None,
        route_policies: Iterable[RouteSpec] = (),
        routes: Sequence[BaseRoute] | None = None,
        identity: Callable[[Scope], str] | None = None,
        exempt_paths: Sequence[str] = ("/healthz", "/readyz", "/metrics"),
        enabled: bool = True,
        headers: HeaderDraft = "draft-7",
    ) -> None:
        if headers not in ("draft-7", "draft-8"):
            raise ValueError(f"unsupported RateLimit header draft {headers!r}")
        self.app = app
        self.limiter = limiter
        self.default_policy = default_policy
        self.policies = [_compile(RoutePolicy(*rp)) for rp in route_policies]
        # Methods some route policy may apply to: other requests (most reads) meet only the
        # default policy and skip route matching altogether.
        self._policy_methods = {p.method for p in self.policies}
        self._any_method = "*" in self._policy_methods
        self._policy_fields: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        # The app's own route table, when given: the route a request is charged for is then the
        # one the router will dispatch it to (its first full match), whatever the spelling.
        self.routes = routes
        self.identity = identity if identity is not None else ClientIdentity()
        self.exempt_paths = frozenset(exempt_paths)
        self.enabled = enabled
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        path = _route_path(scope) if scope.get("root_path") else scope["path"]
        if path in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if (
            self.default_policy is not None
            and not self._any_method
            and scope["method"] not in self._policy_methods
        ):
            # Most requests (reads) meet only the default policy: no route matching, no list.
            check = _Check("client", self.default_policy, f"client:{self.identity(scope)}")
        else:
            checks = self._checks(scope)
            if not checks:
                await self.app(scope, receive, send)
                return
            if len(checks) > 1:
                await self._several(scope, receive, send, checks)
                return
            check = checks[0]
        # One policy: decided at once when the limiter counts in this process, and no list,
        # task or comprehension around it.
        result = self.limiter.decide_now(check.policy, check.key) or await self.limiter.hit(
            check.policy, check.key
        )
        if isinstance(result, LimiterUnavailable):
            await self._unavailable(scope, receive, send)
        elif result.degraded:
            await self.app(scope, receive, send)  # counted nothing: nothing to advertise
        elif not result.allowed:
            await self._refuse(scope, receive, send, check, result)
        else:
            # Appended as raw pairs at the response start by the one send wrapper of the header
            # layers (service/response_headers.py): nothing below sets these fields.
            start, send = response_start(scope, send)
            start.appended += self._raw_headers(check, result)
            await self.app(scope, receive, send)

    async def _several(
        self, scope: Scope, receive: Receive, send: Send, checks: list[_Check]
    ) -> None:
        results = await asyncio.gather(*(self.limiter.hit(c.policy, c.key) for c in checks))
        if any(isinstance(r, LimiterUnavailable) for r in results):
            await self._unavailable(scope, receive, send)
            return
        # A degraded decision (storage failed open) counted nothing: it neither refuses the request
        # nor is advertised in headers.
        counted = [
            (c, r)
            for c, r in zip(checks, results, strict=True)
            if isinstance(r, Decision) and not r.degraded
        ]
        denied = [(c, d) for c, d in counted if not d.allowed]
        if denied:
            # The client may come back only when every refusing policy allows it again.
            check, decision = max(denied, key=lambda cd: cd[1].reset_after_s)
            await self._refuse(scope, receive, send, check, decision)
            return
        if not counted:
            await self.app(scope, receive, send)
            return

        if len(counted) == 1:
            check, decision = counted[0]
        else:
            check, decision = min(counted, key=lambda cd: (cd[1].remaining, -cd[1].reset_after_s))
        # Appended as raw pairs at the response start by the one send wrapper of the header
        # layers (service/response_headers.py): nothing below sets these fields.
        start, send = response_start(scope, send)
        start.appended += self._raw_headers(check, decision)
        await self.app(scope, receive, send)

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(503, "rate_limiter_unavailable", "rate limiting is unavailable", {})(
            scope, receive, send
        )

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, check: _Check, decision: Decision
    ) -> None:
        retry = decision.reset_after_s
        response = error_response(
            429,
            "rate_limited",
            f"too many requests; retry after {retry} s",
            {"limit": decision.limit, "window_s": check.policy.window_s, "retry_after_s": retry},
        )
        response.headers.update(self._headers(check, decision))
        response.headers["Retry-After"] = str(retry)
        await response(scope, receive, send)

    def _checks(self, scope: Scope) -> list[_Check]:
        client = self.identity(scope)
        checks = []
        if self.default_policy is not None:
            checks.append(_Check("client", self.default_policy, f"client:{client}"))
        method = scope["method"]
        if not self._any_method and method not in self._policy_methods:
            return checks
        routed = _routed(self.routes, scope) if self.routes is not None else None
        for policy in self.policies:
            if policy.method not in ("*", method):
                continue
            params = policy.match(scope, routed)
            if params is None:
                continue
            ctx = KeyContext(client=client, path_params=params, scope=scope)
            # The route name is part of the key so that two policies with the same numbers keyed
            # on the same client never share one counter.
            checks.append(
                _Check(policy.name, policy.policy, f"{policy.name}:{policy.key_func(ctx)}")
            )
        return checks

    def _raw_headers(self, check: _Check, decision: Decision) -> list[tuple[bytes, bytes]]:
        if self.headers == "draft-8":
            return [
                (name.lower().encode(), value.encode())
                for name, value in self._headers(check, decision).items()
            ]
        fields = self._policy_fields.get((decision.limit, check.policy.window_s))
        if fields is None:
            # The policy field and the start of the RateLimit field are the same on every
            # response under one policy: built once.
            fields = (
                f"{decision.limit};w={check.policy.window_s}".encode(),
                f"limit={decision.limit}, remaining=".encode(),
            )
            self._policy_fields[(decision.limit, check.policy.window_s)] = fields
        policy, head = fields
        return [
            (b"ratelimit-policy", policy),
            (b"ratelimit", b"%s%d, reset=%d" % (head, decision.remaining, decision.reset_after_s)),
        ]

    def _headers(self, check: _Check, decision: Decision) -> dict[str, str]:
        limit, window = decision.limit, check.policy.window_s
        if self.headers == "draft-8":
            name = f'"{limit}-in-{_duration(window)}"'
            return {
                "RateLimit-Policy": f"{name}; q={limit}; w={window}",
                "RateLimit": f"{name}; r={decision.remaining}; t={decision.reset_after_s}",
            }
        return {
            "RateLimit-Policy": f"{limit};w={window}",
            "RateLimit": f"limit={limit}, remaining={decision.remaining}, "
            f"reset={decision.reset_after_s}",
        }


class _Routed(NamedTuple):
    path_format: str
    path_params: Mapping[str, str]


def _routed(routes: Sequence[BaseRoute], scope: Scope) -> _Routed | None:
    """The route Starlette's router dispatches this request to: the first that matches fully
    (path and method). None when the router will answer itself (404, 405, slash redirect)."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            path_format = getattr(route, "path_format", None)
            if not isinstance(path_format, str):
                return None
            return _Routed(path_format, _params(child.get("path_params", {})))
    return None


def _params(values: Mapping[str, object]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


async def _never_called(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise AssertionError("a rate-limit policy's route only matches; it never serves")


@dataclass(frozen=True, slots=True)
class _CompiledPolicy:
    name: str
    method: str
    template: str | None
    route: Route | None
    regex: re.Pattern[str] | None
    policy: RateLimit
    key_func: KeyFunc

    def match(self, scope: Scope, routed: _Routed | None) -> Mapping[str, str] | None:
        """The path parameters when this policy applies to the request, else None."""
        if self.regex is not None:
            found = self.regex.fullmatch(_route_path(scope))
            return None if found is None else _params(found.groupdict())
        if routed is not None or self.route is None:
            # Decided by the app's router: the policy applies to the route it dispatches to.
            return routed.path_params if routed and routed.path_format == self.template else None
        # No route table given: match as a Starlette Route of this template would (`^...$`,
        # which also matches before a final newline, the same converters, root_path).
        match, child = self.route.matches(scope)
        return None if match is Match.NONE else _params(child.get("path_params", {}))


def _compile(route: RoutePolicy) -> _CompiledPolicy:
    method = route.method.upper()
    if isinstance(route.path, re.Pattern):
        shown, template, matcher, regex = route.path.pattern, None, None, route.path
    else:
        shown, template, regex = route.path, route.path, None
        matcher = Route(route.path, _never_called)
    # No braces in storage keys: Redis Cluster would read "{order_id}" as a hash tag and put every
    # order's counter in one slot.
    name = f"{method} {shown}".replace("{", "<").replace("}", ">")
    return _CompiledPolicy(name, method, template, matcher, regex, route.policy, route.key_func)


def _route_path(scope: Scope) -> str:
    # Servers include root_path in path; policies and exemptions are written without it.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _canonical_id(raw: str) -> str:
    # Spellings of one id must share one budget, or an attacker brute-forcing a pickup code gets a
    # fresh budget per spelling ("ABC…" / "abc…", a UUID with or without dashes or braces).
    return canonical_id(raw) or raw.strip().casefold()


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"
