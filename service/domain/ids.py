"""Ids are UUIDs; this is the one place that decides what spells one."""

from __future__ import annotations

import functools
import uuid


@functools.lru_cache(maxsize=4096)
def canonical_id(raw: str) -> str | None:
    """The canonical (lower-case, dashed) form of a UUID in any spelling `uuid.UUID` accepts
    (upper case, no dashes, braces, `urn:uuid:`), or None when `raw` is not a UUID.

    Cached: hot ids repeat on every request for them, and parsing showed up in the hot-path
    profile."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None
