from __future__ import annotations

import pytest

from service.domain import money
from service.domain.errors import InvalidInputError
from service.domain.models import OrderLine


def test_total_is_the_exact_integer_sum_of_lines() -> None:
    lines = [OrderLine("a", "A", 333, 3), OrderLine("b", "B", 1, 1)]
    assert money.order_total(lines) == 1000
    assert isinstance(money.order_total(lines), int)


def test_absurd_totals_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        money.order_total([OrderLine("a", "A", 1_000_000, 50)])


def test_mixed_currencies_are_refused() -> None:
    assert money.single_currency(["GBP", "GBP"]) == "GBP"
    with pytest.raises(InvalidInputError):
        money.single_currency(["GBP", "EUR"])
