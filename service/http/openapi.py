"""OpenAPI 3.1 from the same pydantic models that validate requests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.http.endpoint import Endpoint
from service.http.schemas import ErrorEnvelope

REF = "#/components/schemas/{model}"
PATH_PARAM = re.compile(r"{(\w+)}")
ERROR_TEXT = {
    400: "Malformed JSON",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Unknown id",
    405: "Method not allowed",
    409: "Conflicts with current state",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation failed",
    429: "Rate limited",
    503: "Unavailable",
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "staff": [{"staffKey": []}],
    "admin": [{"adminToken": []}],
    "order": [{"orderToken": []}, {"staffKey": []}],
    "metrics": [{"metricsToken": []}],
    "metrics-optional": [{}, {"metricsToken": []}],
}
# Header parameters whose rules are narrower than "a string"; the handlers enforce the same.
HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "description": "Printable characters; a retry with the same key returns the first result",
    },
}


HEADER = "#/components/headers/{name}"
# Response headers, described once and referenced by every response that carries them.
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "This request's id (yours when you sent a valid X-Request-ID, else the "
        "trace-id of a valid traceparent, else generated); every log line for it carries it",
        "schema": {"type": "string"},
        "example": "4bf92f3577b34da6a3ce929d0e0e4736",
    },
    "RateLimit": {
        "description": "IETF draft-7: the policy closest to refusing: limit, remaining, reset",
        "schema": {"type": "string"},
        "example": "limit=100, remaining=37, reset=412",
    },
    "RateLimit-Policy": {
        "description": "IETF draft-7: requests per window (seconds)",
        "schema": {"type": "string"},
        "example": "100;w=900",
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
        "example": 30,
    },
    "Location": {
        "description": "The created resource",
        "schema": {"type": "string", "format": "uri-reference"},
        "example": "/v1/orders/0b9e4c5e-3f51-4c43-9c47-2f0b5f3a9a11",
    },
    "Idempotent-Replayed": {
        "description": "Present (true) when this is the stored answer to an earlier request "
        "with the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
        "example": "true",
    },
}
ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    404: {"error": {"code": "not_found", "message": "no store with this id"}},
    409: {"error": {"code": "slot_full", "message": "this pickup slot is full"}},
    422: {
        "error": {
            "code": "validation_failed",
            "message": "invalid request",
            "details": [{"field": "items", "message": "at least one item is required"}],
        }
    },
    429: {"error": {"code": "rate_limited", "message": "too many requests; retry later"}},
    503: {
        "error": {
            "code": "service_unavailable",
            "message": "the database is unavailable; please retry shortly",
        }
    },
}


def _headers(*names: str) -> dict[str, Any]:
    return {n: {"$ref": HEADER.format(name=n)} for n in names}


def document(endpoints: Sequence[Endpoint], *, version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorEnvelope}
    for ep in endpoints:
        # Query models too, so the enums their parameters reference land in components.
        models.update(m for m in (ep.body, ep.response, ep.query) if m is not None)
    mode: dict[bool, Literal["validation", "serialization"]] = {
        True: "validation",
        False: "serialization",
    }
    keyed = [(m, mode[_is_input(m, endpoints)]) for m in sorted(models, key=lambda m: m.__name__)]
    _, schemas = models_json_schema(keyed, ref_template=REF)

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "operationId": ep.handler.__name__,
            "summary": ep.summary,
            "tags": [ep.tag],
            "parameters": _parameters(ep),
            "responses": _responses(ep),
        }
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": _ref(ep.body)}}},
            }
        if ep.auth in SECURITY:
            op["security"] = SECURITY[ep.auth]
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pickup service", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "headers": RESPONSE_HEADERS,
            "securitySchemes": {
                "staffKey": {"type": "http", "scheme": "bearer", "description": "STAFF_API_KEYS"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"},
                "orderToken": {"type": "apiKey", "in": "header", "name": "X-Order-Token"},
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "METRICS_TOKEN (needed only when it is set)",
                },
            },
        },
    }


def _is_input(model: type[BaseModel], endpoints: Sequence[Endpoint]) -> bool:
    return any(ep.body is model for ep in endpoints)


def _ref(model: type[BaseModel]) -> str:
    return REF.format(model=model.__name__)


def _parameters(ep: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for n in PATH_PARAM.findall(ep.path)
    ]
    if ep.query is not None:
        schema = ep.query.model_json_schema(ref_template=REF)
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": {k: v for k, v in prop.items() if k != "title"},
                }
            )
    params += [
        {
            "name": h,
            "in": "header",
            "required": False,
            "schema": HEADER_SCHEMAS.get(h, {"type": "string"}),
        }
        for h in ep.headers
    ]
    return params


def _responses(ep: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    limited = ep.path.startswith("/v1/") and ep.rate_limit != "exempt"
    ok_headers = ["X-Request-ID", *(("RateLimit", "RateLimit-Policy") if limited else ())]
    if ep.status == 201:
        ok_headers.append("Location")
    if "Idempotency-Key" in ep.headers:
        ok_headers.append("Idempotent-Replayed")
    if ep.response is not None:
        responses[str(ep.status)] = {
            "description": ep.summary,
            "headers": _headers(*ok_headers),
            "content": {"application/json": {"schema": {"$ref": _ref(ep.response)}}},
        }
    else:
        responses[str(ep.status)] = {"description": ep.summary, "headers": _headers(*ok_headers)}
    # Every /v1 route sits behind the rate limiter and can find a dependency down.
    always = (429, 503) if ep.path.startswith("/v1/") else ()
    for status in (*ep.error_statuses(), *always):
        headers = ["X-Request-ID"]
        if status == 429:
            headers += ["RateLimit", "RateLimit-Policy", "Retry-After"]
        content: dict[str, Any] = {"schema": {"$ref": _ref(ErrorEnvelope)}}
        if status in ERROR_EXAMPLES:
            content["example"] = ERROR_EXAMPLES[status]
        responses.setdefault(
            str(status),
            {
                "description": ERROR_TEXT.get(status, "Error"),
                "headers": _headers(*headers),
                "content": {"application/json": content},
            },
        )
    return responses
