"""Reading Prometheus text the way an operator's query would: the sum of one metric's samples
whose labels include the given ones (over every worker). The one parser of the tests and lab."""

from __future__ import annotations

import httpx


def sample_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in text.splitlines():
        if not line.startswith((name + "{", name + " ")):
            continue
        series, _, value = line.rpartition(" ")
        if all(w in series for w in wanted):
            total += float(value)
    return total


def scrape(url: str, name: str, headers: dict[str, str] | None = None, **labels: str) -> float:
    """`sample_sum` over the service's /metrics at `url`."""
    return sample_sum(httpx.get(f"{url}/metrics", headers=headers, timeout=10).text, name, **labels)
