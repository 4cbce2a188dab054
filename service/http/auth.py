"""Credentials from headers to a Principal. Every comparison is constant-time and every
configured key is compared, so timing tells nothing about which keys exist."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from service.domain.errors import AuthenticationError
from service.http.context import context
from service.usecases.access import ANONYMOUS, Principal


def principal(request: Request) -> Principal:
    ctx = context(request)
    authorization = request.headers.get("authorization")
    order_token = request.headers.get("x-order-token") or None
    if authorization is None:
        return Principal("anonymous", order_token=order_token) if order_token else ANONYMOUS
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise AuthenticationError("use Authorization: Bearer <key>")
    given = presented.strip().encode()
    found: Principal | None = None
    if ctx.admin_token is not None and hmac.compare_digest(given, ctx.admin_token.encode()):
        found = Principal("admin")
    for store_id, key in ctx.staff_keys:
        if hmac.compare_digest(given, key.encode()) and found is None:
            found = Principal("staff", store_id=store_id)
    if found is None:
        raise AuthenticationError("the API key is not valid")
    return found
