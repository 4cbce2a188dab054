"""Errors outside the domain (configuration and start-up failures), and the one JSON error
envelope every refusal is sent in, whichever layer refuses (routes, limiter, body limit,
metrics)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from service.domain.errors import PickupError


class ConfigError(Exception):
    """Raised when the configuration is invalid; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class DataFileError(Exception):
    """Raised when the JSON data file exists but cannot be read as our data."""


def error_envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """`{"error": {"code", "message", "details"}}`: the body of every error the service sends
    (documented as `ErrorEnvelope` in service/http/schemas.py)."""
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(error_envelope(code, message, details)),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


__all__ = ["ConfigError", "DataFileError", "PickupError", "error_envelope", "error_response"]
