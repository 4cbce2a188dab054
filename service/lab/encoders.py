"""RESPONSE_ENCODER=stdlib: what a plain json.dumps-based stack pays per response."""

from __future__ import annotations

import json
from typing import Any


def stdlib_dumps(content: Any) -> bytes:
    return json.dumps(content, separators=(",", ":")).encode()
