from __future__ import annotations

import pytest

from service.http.negotiation import accepts_gzip


@pytest.mark.parametrize(
    "header",
    ["gzip", "GZIP", "deflate, gzip;q=0.5", "br;q=1, gzip ; q=0.001", "*", "x-gzip", "*;q=0.3"],
)
def test_gzip_is_accepted_when_its_q_value_is_positive(header: str) -> None:
    assert accepts_gzip(header)
    assert accepts_gzip(header.encode())


@pytest.mark.parametrize(
    "header",
    [
        "",
        "identity",
        "gzip;q=0",
        "gzip; q=0.000",
        "gzip;q=0, deflate",
        "*;q=0",
        "gzip;q=0, *",  # an explicit refusal wins over the wildcard
        "gzip;q=abc",
        "gzip;q=2",
        "br, deflate",
        "notgzip",
    ],
)
def test_gzip_is_refused_when_absent_or_weighted_zero(header: str) -> None:
    assert not accepts_gzip(header)
