"""The one JSON error envelope every refusal is sent in, whichever layer refuses (routes, limiter,
body limit, metrics). Apart from service/errors.py because it needs the web stack."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


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
