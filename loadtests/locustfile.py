"""Load scenarios for the pickup service, over HTTP only. How to run them: loadtests/README.md."""

from __future__ import annotations

import locust  # first: it monkey-patches the standard library for gevent

# isort: split
from typing import Any

from common import ai, counters, rush, selection, shapes
from common.abuse import AbuseUser
from common.ai import AIUser
from common.browse import BrowseUser
from common.health import HealthUser
from common.orders import OrderFlowUser
from common.rush import SlotRushUser

__all__ = ["AIUser", "AbuseUser", "BrowseUser", "HealthUser", "OrderFlowUser", "SlotRushUser"]


@locust.events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--shape",
        choices=sorted(shapes.SHAPES),
        default="",
        env_var="LOCUST_SHAPE",
        help="Load shape; -u is its peak, -r its spawn rate, -t its duration (default: none)",
    )
    parser.add_argument(
        "--staff-key",
        default="",
        env_var="PICKUP_STAFF_KEY",
        is_secret=True,
        help="Staff key covering every store: orders are then accepted and handed over",
    )
    parser.add_argument(
        "--fake-openai-url",
        default="",
        env_var="LOCUST_FAKE_OPENAI_URL",
        help="Root URL of `pickup fake-openai`: its faults then follow a timetable (ai)",
    )
    parser.add_argument(
        "--fault-phase-seconds",
        type=float,
        default=20.0,
        env_var="LOCUST_FAULT_PHASE_SECONDS",
        help="Length of each phase: healthy, slow, failing, healed",
    )
    parser.add_argument(
        "--abuse-direct",
        action="store_true",
        env_var="LOCUST_ABUSE_DIRECT",
        help="AbuseUser forges X-Forwarded-For as a direct client (TRUST_PROXY=0), not via a proxy",
    )
    parser.add_argument(
        "--counters-file",
        default="",
        env_var="LOCUST_COUNTERS_FILE",
        help="Where to write the scenario counters (JSON) when Locust quits",
    )


@locust.events.init.add_listener
def set_up(environment: locust.env.Environment, **_: Any) -> None:
    selection.select_users(environment)
    shapes.select(environment)
    counters.setup(environment)
    rush.setup(environment)
    ai.setup(environment)
