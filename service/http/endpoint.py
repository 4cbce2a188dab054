"""An endpoint is declared once; Starlette routes and the OpenAPI document both come from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]


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
    auth: Literal["public", "staff", "order", "admin", "metrics"] = "public"
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()  # request headers it reads, for the document
