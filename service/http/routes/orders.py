from __future__ import annotations

from typing import Any

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response

from service.domain.errors import AuthenticationError, InvalidInputError, WrongPickupCodeError
from service.domain.models import OrderStatus
from service.http import parsing, presenters
from service.http import schemas as s
from service.http.auth import principal
from service.http.caching import (
    ORDER_ENTITY,
    PRIVATE_CACHE_CONTROL,
    SLOTS_ENTITY,
    negotiated_json,
    private_revalidated,
)
from service.http.context import context
from service.http.endpoint import Endpoint
from service.http.responses import JSONResponse
from service.usecases import orders

MAX_IDEMPOTENCY_KEY = 255


# Business events, for the people running the shop: ids, counts and states, never a name, a
# phone number or a pickup code (request_id is bound by the request middleware).
def events() -> Any:
    # Looked up per event (writes only), so the logging configuration in force is the one used.
    return structlog.get_logger("service.orders")


async def place_order(request: Request) -> Response:
    data, _ = await parsing.body(request, s.OrderIn)
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
        raise InvalidInputError(
            "Idempotency-Key must be 1-255 printable characters",
            details=[{"field": "Idempotency-Key", "message": "invalid header value"}],
        )
    # The fingerprint is of the validated request, so whitespace or key order do not matter.
    canonical = orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    request_ = orders.OrderRequest(
        store_id=str(data.store_id),
        pickup_slot_start=data.pickup_slot_start,
        customer_name=data.customer.name,
        customer_phone=data.customer.phone,
        items=[(str(line.menu_item_id), line.quantity) for line in data.items],
        note=data.note,
        fingerprint=orders.fingerprint(canonical),
    )
    ctx = context(request)
    cap = ctx.settings.max_live_orders_per_phone
    order, created = await orders.place_order(
        ctx.repo, request_, now=ctx.clock(), idempotency_key=key, phone_cap=cap or None
    )
    headers = {"Location": f"/v1/orders/{order.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    else:
        events().info(
            "order_placed",
            order_id=order.id,
            store_id=order.store_id,
            lines=len(order.lines),
            total_cents=order.total_cents,
            pickup_slot_start=order.pickup_slot_start.isoformat(),
        )
    return JSONResponse(presenters.order(order, with_token=True), status_code=201, headers=headers)


async def get_order(request: Request) -> Response:
    order_id = parsing.path_id(request, "order_id", "order")
    who = principal(request)
    repo = context(request).repo
    if who.kind == "anonymous" and who.order_token:
        # The customer's app polls its order: a revalidation it may skip the database for is
        # one whose ETag was kept for this very token (caching.private_revalidated). Only the
        # customer's view carries the pickup code.
        async def customer_view() -> dict[str, Any]:
            return presenters.order(await orders.get_order(repo, who, order_id), for_customer=True)

        return await private_revalidated(
            request,
            cache_name="order",
            entity=ORDER_ENTITY.format(order_id=order_id),
            credential=who.order_token,
            load=customer_view,
        )
    order = await orders.get_order(repo, who, order_id)
    return negotiated_json(request, presenters.order(order), cache_control=PRIVATE_CACHE_CONTROL)


async def cancel_order(request: Request) -> Response:
    order_id = parsing.path_id(request, "order_id", "order")
    ctx = context(request)
    who = principal(request)
    order = await orders.cancel_order(ctx.repo, who, order_id, now=ctx.clock())
    events().info(
        "order_status_changed", order_id=order.id, store_id=order.store_id, status=order.status
    )
    # Anonymous callers get this far only with the order's own token: they are its customer.
    return JSONResponse(presenters.order(order, for_customer=who.kind == "anonymous"))


async def set_status(request: Request) -> Response:
    who = principal(request)
    order_id = parsing.path_id(request, "order_id", "order")
    data, _ = await parsing.body(request, s.StatusIn)
    ctx = context(request)
    order = await orders.set_status(
        ctx.repo, who, order_id, OrderStatus(data.status), now=ctx.clock()
    )
    events().info(
        "order_status_changed", order_id=order.id, store_id=order.store_id, status=order.status
    )
    return JSONResponse(presenters.order(order))


async def pick_up(request: Request) -> Response:
    who = principal(request)
    order_id = parsing.path_id(request, "order_id", "order")
    if who.kind == "anonymous":
        # Checked before anything is counted: only authenticated attempts spend the budget.
        raise AuthenticationError("a staff API key is required (Authorization: Bearer <key>)")
    data, _ = await parsing.body(request, s.PickupIn)
    ctx = context(request)
    assert ctx.pickup_guard is not None  # the composition root always sets it
    await ctx.pickup_guard.spend(order_id)
    try:
        order = await orders.pick_up_order(
            ctx.repo, who, order_id, data.pickup_code, now=ctx.clock()
        )
    except WrongPickupCodeError:
        events().warning("pickup_code_refused", order_id=order_id)
        raise
    events().info("order_picked_up", order_id=order.id, store_id=order.store_id)
    return JSONResponse(presenters.order(order))


async def list_store_orders(request: Request) -> Response:
    who = principal(request)
    store_id = parsing.path_id(request, "store_id", "store")
    q = parsing.query(request, s.OrdersQuery)
    found, cursor = await orders.list_store_orders(
        context(request).repo,
        who,
        store_id,
        status=q.status,
        day=q.date,
        limit=q.limit,
        cursor=q.cursor,
    )
    return JSONResponse(presenters.page([presenters.order(o) for o in found], cursor))


ORDER = "/v1/orders/{order_id}"
ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/orders",
        place_order,
        "Place an order",
        "orders",
        s.OrderCreatedOut,
        status=201,
        body=s.OrderIn,
        errors=(404, 409),
        headers=("Idempotency-Key",),
        rate_limit="orders",
        invalidates=(SLOTS_ENTITY,),  # a new order has no kept ETag yet; its slot fills
    ),
    Endpoint(
        "GET",
        ORDER,
        get_order,
        "Get an order (X-Order-Token or staff key); the pickup code only with X-Order-Token",
        "orders",
        s.OrderViewOut,
        auth="order",
    ),
    Endpoint(
        "POST",
        f"{ORDER}/cancel",
        cancel_order,
        "Cancel an order",
        "orders",
        s.OrderViewOut,
        auth="order",
        errors=(409,),
        invalidates=(ORDER_ENTITY, SLOTS_ENTITY),
    ),
    Endpoint(
        "POST",
        f"{ORDER}/status",
        set_status,
        "Move an order along its lifecycle",
        "staff",
        s.OrderOut,
        body=s.StatusIn,
        auth="staff",
        errors=(409,),
        invalidates=(ORDER_ENTITY, SLOTS_ENTITY),
    ),
    Endpoint(
        "POST",
        f"{ORDER}/pickup",
        pick_up,
        "Hand over an order (needs its pickup code)",
        "staff",
        s.OrderOut,
        body=s.PickupIn,
        auth="staff",
        errors=(409,),
        # Per order, whoever asks, but only authenticated, well-formed attempts: the handler
        # counts them (http/pickup_guard.py), failing closed when the count is unavailable.
        invalidates=(ORDER_ENTITY, SLOTS_ENTITY),
    ),
    Endpoint(
        "GET",
        "/v1/stores/{store_id}/orders",
        list_store_orders,
        "A store's orders by status and date",
        "staff",
        s.OrderList,
        query=s.OrdersQuery,
        auth="staff",
    ),
]
