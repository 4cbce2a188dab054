"""Scenario outcomes Locust's stats cannot hold (201s in the rush, AI sources, allowed/limited),
summed across workers and written as JSON to `--counters-file` when Locust quits."""

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


def count(key: str) -> None:
    counts[key] += 1


def setup(environment: Environment) -> None:
    events = environment.events

    if isinstance(environment.runner, WorkerRunner):

        @events.report_to_master.add_listener
        def send_counts(data: dict[str, Any], **_: Any) -> None:
            data["pickup_counts"] = dict(counts)
            counts.clear()

        return

    @events.worker_report.add_listener
    def add_counts(data: dict[str, Any], **_: Any) -> None:
        counts.update(data.get("pickup_counts", {}))

    @events.test_start.add_listener
    def reset(**_: Any) -> None:
        counts.clear()
        notes.clear()  # the other modules' test_start listeners run after this one

    @events.quitting.add_listener
    def write(**_: Any) -> None:
        logging.info("pickup counters: %s", json.dumps(dict(sorted(counts.items()))))
        if path := environment.parsed_options.counters_file:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            document = {"host": environment.host, "counts": dict(sorted(counts.items())), **notes}
            Path(path).write_text(json.dumps(document, indent=2) + "\n")
