"""Reading Prometheus text the way an operator's query would: the sum of one metric's samples
whose labels include the given ones."""

from __future__ import annotations


def sample_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
