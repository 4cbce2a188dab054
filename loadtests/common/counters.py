"""Scenario outcomes Locust's stats cannot hold (201s in the rush, AI sources, allowed/limited),
summed across workers and written as JSON to `--counters-file` when Locust quits.

Also every request's response time to a tenth of a millisecond: Locust's own statistics round a
time under 100 ms to a whole millisecond, so the p50 of a 1-3 ms endpoint moves in steps of a
third or a half, and a ratio of two such p50s is decided by the rounding. The file's
`latency_ms` holds percentiles from these finer buckets."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

counts: Counter[str] = Counter()
notes: dict[str, Any] = {}  # facts a notebook needs beside the counts (the rush target, ...)
latency: Counter[float] = Counter()  # response time (ms, one decimal) -> requests


def count(key: str) -> None:
    counts[key] += 1


def percentiles(
    histogram: Counter[float], points: tuple[float, ...] = (50, 90, 99)
) -> dict[str, Any]:
    """`{"requests": n, "p50": ms, ...}` from a response-time histogram (None when empty)."""
    total = sum(histogram.values())
    found: dict[str, Any] = {"requests": total}
    ordered = sorted(histogram.items())
    for point in points:
        found[f"p{point:g}"] = None
        seen = 0
        for ms, n in ordered:
            seen += n
            if total and seen >= total * point / 100:
                found[f"p{point:g}"] = ms
                break
    return found


def setup(environment: Environment) -> None:
    events = environment.events

    @events.request.add_listener
    def time_request(response_time: float | None = None, **_: Any) -> None:
        if response_time is not None:
            latency[round(response_time, 1)] += 1

    if isinstance(environment.runner, WorkerRunner):

        @events.report_to_master.add_listener
        def send_counts(data: dict[str, Any], **_: Any) -> None:
            data["pickup_counts"] = dict(counts)
            data["pickup_latency"] = [[ms, n] for ms, n in latency.items()]
            counts.clear()
            latency.clear()

        return

    @events.worker_report.add_listener
    def add_counts(data: dict[str, Any], **_: Any) -> None:
        counts.update(data.get("pickup_counts", {}))
        for ms, n in data.get("pickup_latency", []):
            latency[float(ms)] += n

    @events.test_start.add_listener
    def reset(**_: Any) -> None:
        counts.clear()
        latency.clear()
        notes.clear()  # the other modules' test_start listeners run after this one

    @events.quitting.add_listener
    def write(**_: Any) -> None:
        logging.info("pickup counters: %s", json.dumps(dict(sorted(counts.items()))))
        if path := environment.parsed_options.counters_file:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            document = {
                "host": environment.host,
                "counts": dict(sorted(counts.items())),
                "latency_ms": percentiles(latency),
                **notes,
            }
            Path(path).write_text(json.dumps(document, indent=2) + "\n")
