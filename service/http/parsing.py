"""Turning requests into validated values, with a precise 4xx for every way that can fail."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from service.domain.errors import InvalidInputError, NotFoundError
from service.domain.ids import canonical_id
from service.http.transport_errors import MalformedRequestError, UnsupportedMediaTypeError

M = TypeVar("M", bound=BaseModel)


async def body(request: Request, model: type[M]) -> tuple[M, bytes]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            "send the body as JSON with Content-Type: application/json",
            details={"content_type": content_type[:100] or None},
        )
    raw = await request.body()
    if not raw.strip():
        raise MalformedRequestError("the request body is empty; a JSON object is required")
    try:
        return model.model_validate_json(raw), raw
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise MalformedRequestError(
                "the request body is not valid JSON",
                details={"reason": str(errors[0]["msg"])[:200]},
            ) from None
        raise InvalidInputError(
            "the request failed validation", details=field_errors(errors)
        ) from None


def query(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise InvalidInputError("invalid query parameters", details=field_errors(errors)) from None


def path_id(request: Request, name: str, what: str) -> str:
    canonical = canonical_id(request.path_params[name])
    if canonical is None:
        # Ids are UUIDs, so anything else names nothing; never echo the raw value back.
        raise NotFoundError(f"no {what} with this id", details={"reason": "ids are UUIDs"})
    return canonical


def field_errors(errors: list[Any]) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "body",
            "message": str(err["msg"]).removeprefix("Value error, "),
            "type": str(err["type"]),
        }
        for err in errors
    ]
