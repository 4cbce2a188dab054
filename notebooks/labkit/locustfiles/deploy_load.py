"""The customer mix of loadtests/ (browse, order, AI), plus what a deploy drill must know
afterwards: every order the service acknowledged (201, with its id and order token) and each
second's requests and failures, written as JSON to `--deploy-record` when Locust quits.

Run by notebooks/labkit/deploy.py as a subprocess (Locust cannot be imported into a kernel),
with the working directory loadtests/, so the scenarios are exactly the ones `make loadtest`
runs; nothing in loadtests/ is changed.
"""

from __future__ import annotations

import locust  # first: it monkey-patches the standard library for gevent

# isort: split
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

LOADTESTS = Path(__file__).resolve().parents[3] / "loadtests"
sys.path.insert(0, str(LOADTESTS))

from locustfile import AIUser, BrowseUser, OrderFlowUser  # noqa: E402

__all__ = ["AIUser", "BrowseUser", "OrderFlowUser"]

acknowledged: dict[str, str] = {}  # order id -> order token
per_second: Counter[tuple[int, str]] = Counter()  # (unix second, "ok" | "failed") -> requests


@locust.events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--deploy-record",
        default="",
        help="Where to write acknowledged orders and the per-second timeline (JSON) on quit",
    )


@locust.events.request.add_listener
def on_request(
    name: str, response: Any = None, exception: Any = None, request_type: str = "", **_: Any
) -> None:
    per_second[(int(time.time()), "failed" if exception else "ok")] += 1
    created = getattr(response, "status_code", 0) == 201
    if request_type == "POST" and name.startswith("/v1/orders") and created:
        try:
            body = response.json()
            acknowledged[str(body["id"])] = str(body["order_token"])
        except (ValueError, KeyError, TypeError):
            pass  # a 201 without an id is already a failure in the scenario's own checks


@locust.events.quitting.add_listener
def write_record(environment: Any, **_: Any) -> None:
    path = environment.parsed_options.deploy_record
    if not path:
        return
    timeline: dict[int, dict[str, int]] = {}
    for (second, outcome), count in per_second.items():
        timeline.setdefault(second, {"ok": 0, "failed": 0})[outcome] += count
    document = {
        "acknowledged": [{"id": k, "token": v} for k, v in acknowledged.items()],
        "timeline": [{"t": s, **timeline[s]} for s in sorted(timeline)],
    }
    Path(path).write_text(json.dumps(document))
