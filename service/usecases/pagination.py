"""Opaque cursors: clients pass back what we gave them, and a tampered one is a 422."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from service.domain.errors import InvalidInputError


def encode(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode(cursor: str, parts: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    values = raw.split("|")
    if len(values) != parts or not all(values):
        raise InvalidInputError(
            "cursor is not valid; pass back next_cursor exactly as received",
            details=[{"field": "cursor", "message": "invalid cursor"}],
        )
    return values


def decode_order_cursor(cursor: str) -> tuple[datetime, str]:
    when, order_id = decode(cursor, 2)
    try:
        return datetime.fromisoformat(when), order_id
    except ValueError:
        raise InvalidInputError(
            "cursor is not valid", details=[{"field": "cursor", "message": "invalid cursor"}]
        ) from None
