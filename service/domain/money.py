"""Money is integer minor units end to end; floats never touch a price."""

from __future__ import annotations

from collections.abc import Iterable

from service.domain.errors import InvalidInputError
from service.domain.models import OrderLine

MAX_ORDER_TOTAL_CENTS = 10_000_000  # 100,000.00 in major units: far above any real pickup order


def order_total(lines: Iterable[OrderLine]) -> int:
    total = sum(line.line_total_cents for line in lines)
    if total > MAX_ORDER_TOTAL_CENTS:
        raise InvalidInputError(
            "order total exceeds the maximum allowed",
            details=[
                {"field": "items", "message": f"total must be at most {MAX_ORDER_TOTAL_CENTS}"}
            ],
        )
    return total


def single_currency(currencies: Iterable[str]) -> str:
    found = set(currencies)
    if len(found) != 1:
        raise InvalidInputError(
            "all items of an order must share one currency",
            details=[{"field": "items", "message": f"currencies found: {sorted(found)}"}],
        )
    return found.pop()
