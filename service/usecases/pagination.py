"""Opaque cursors: clients pass back what we gave them, and anything else is a 422.

A cursor is accepted only if it is exactly what `encode` would have issued for values of the
right kind (a canonical id, a UTC instant in its canonical spelling), so no crafted cursor can
carry a naive datetime, an out-of-range value or a non-id into a comparison or a query, where
it would have been a 500 or a false "database unavailable".
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta

from service.domain.errors import InvalidInputError
from service.domain.ids import canonical_id


def encode(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode(cursor: str, parts: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    values = raw.split("|")
    if len(values) != parts or not all(values) or encode(*values) != cursor:
        raise _invalid()
    return values


def decode_id_cursor(cursor: str) -> str:
    (value,) = decode(cursor, 1)
    if canonical_id(value) != value:
        raise _invalid()
    return value


def decode_order_cursor(cursor: str) -> tuple[datetime, str]:
    when, order_id = decode(cursor, 2)
    try:
        instant = datetime.fromisoformat(when)
    except ValueError:
        raise _invalid() from None
    if (
        instant.utcoffset() != timedelta(0)
        or instant.isoformat() != when
        or canonical_id(order_id) != order_id
    ):
        raise _invalid()
    return instant, order_id


def _invalid() -> InvalidInputError:
    return InvalidInputError(
        "cursor is not valid; pass back next_cursor exactly as received",
        details=[{"field": "cursor", "message": "invalid cursor"}],
    )
