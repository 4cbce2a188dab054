"""Content-coding negotiation (RFC 9110 §12.5.3), shared by the cached read path and the gzip
middleware so both decide alike. `gzip;q=0` means "not gzip", which a substring test missed."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=256)
def accepts_gzip(header: str | bytes) -> bool:
    """Whether gzip is acceptable: its own entry's q-value (x-gzip counts as gzip), else the
    `*` entry's, else no. A q-value that does not parse counts as 0."""
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    gzip_q: float | None = None
    any_q: float | None = None
    for entry in text.lower().split(","):
        coding, _, params = entry.partition(";")
        coding = coding.strip()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                q = _qvalue(value.strip())
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            any_q = q
    chosen = gzip_q if gzip_q is not None else any_q
    return chosen is not None and chosen > 0


def _qvalue(value: str) -> float:
    try:
        q = float(value)
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 else 0.0
