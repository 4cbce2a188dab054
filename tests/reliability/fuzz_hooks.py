"""Schemathesis hooks for the OpenAPI fuzz run (loaded by the `schemathesis` CLI, not by pytest).

- Every answer is tallied by status class into $RELIABILITY_FUZZ_LOG, for the summary table.
- Failures caused by a bug already pinned by a strict xfail test are dropped from the run and
  written to the same log as "known", so the fuzz run keeps guarding everything else. The match
  is on the exact input that triggers the bug, never on a whole operation or check.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis

LOG = os.environ.get("RELIABILITY_FUZZ_LOG", "")
EDGE_YEAR = re.compile(r"^(0001|9999)-")  # Python's datetime range ends there
TIMESTAMP = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*$")

SECONDS_OFFSET = re.compile(rb'T\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d:\d\d"')

# Bug -> the xfail test in test_hostile_input.py that pins it.
DATE_OVERFLOW = "test_dates_at_the_ends_of_the_calendar_are_refused_with_422_not_500"
TIMESTAMP_DATES = "test_a_date_query_that_is_not_yyyy_mm_dd_is_refused_with_422"
LMT_OFFSETS = "test_slot_times_are_rfc_3339_even_for_zones_that_used_local_mean_time"
NUL_IS_AN_OUTAGE = "test_a_nul_character_in_text_is_refused_with_422_not_a_503_outage"


def _write(record: dict[str, Any]) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _known_bug(case: Any, response: Any) -> str | None:
    query = case.query or {}
    body = case.body if isinstance(case.body, dict) else {}
    dates = [str(query.get("date", "")), str(body.get("pickup_slot_start", ""))]
    if response.status_code == 500 and any(EDGE_YEAR.match(d) for d in dates):
        return DATE_OVERFLOW
    date = query.get("date")
    if response.status_code == 200 and isinstance(date, str) and TIMESTAMP.match(date):
        return TIMESTAMP_DATES
    if response.status_code == 200 and SECONDS_OFFSET.search(response.content or b""):
        return LMT_OFFSETS
    if response.status_code == 503 and any("\x00" in s for s in _strings(case.body)):
        return NUL_IS_AN_OUTAGE
    return None


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    _write({"status": response.status_code, "operation": case.operation.label})


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    known = _known_bug(case, response)
    if known is None:
        return True
    _write({"known": known, "operation": case.operation.label, "failure": failure.title})
    return False
