from __future__ import annotations

import pytest
from labkit import checks
from labkit.checks import Check

AT_LEAST = Check("x", "s", "throughput ratio", ">=", 0.45, "\u00d7")
AT_MOST = Check("y", "s", "limiter cost", "<=", 10, "µs")
EXACTLY = Check("z", "s", "allowed", "==", 50, "requests", "exact")


def test_goal_text_comes_from_the_same_definition_as_the_predicate() -> None:
    assert AT_LEAST.goal == "≥ 0.45\u00d7"
    assert AT_MOST.goal == "≤ 10 µs"
    assert EXACTLY.goal == "= 50 requests"
    assert checks.check("breaker_opens").goal == "yes"


@pytest.mark.parametrize(
    ("check", "interval", "verdict"),
    [
        (AT_LEAST, (0.46, 0.50), "pass"),
        (AT_LEAST, (0.45, 0.45), "pass"),
        (AT_LEAST, (0.40, 0.44), "fail"),
        (AT_LEAST, (0.43, 0.47), "inconclusive"),
        (AT_MOST, (3.0, 9.0), "pass"),
        (AT_MOST, (11.0, 40.0), "fail"),
        (AT_MOST, (8.0, 12.0), "inconclusive"),
        (EXACTLY, (50.0, 50.0), "pass"),
        (EXACTLY, (51.0, 51.0), "fail"),
        (EXACTLY, (49.0, 51.0), "inconclusive"),
        (AT_LEAST, None, "not_measured"),
    ],
)
def test_the_whole_interval_decides(
    check: Check, interval: tuple[float, float] | None, verdict: str
) -> None:
    assert check.judge(interval) == verdict


def test_an_empty_sample_is_not_measured_never_a_pass() -> None:
    small = checks.check("gzip_small_untouched")
    entry = checks.evaluate(small, [])
    assert entry["verdict"] == "not_measured"
    assert "empty" in entry["reason"]
    assert entry["median"] is None and entry["ci95"] is None


def test_an_error_rate_over_zero_requests_is_not_measured() -> None:
    entry = checks.evaluate(checks.check("ai_errors"), [checks.rate_percent(0, 0)])
    assert entry["verdict"] == "not_measured"


def test_a_missing_tool_is_not_measured_even_with_numbers() -> None:
    entry = checks.evaluate(AT_LEAST, [1.0, 1.0, 1.0], reason="wrk is not installed")
    assert entry["verdict"] == "not_measured"
    assert entry["samples"] == []


def test_summary_entry_carries_samples_median_interval_and_command() -> None:
    entry = checks.evaluate(AT_LEAST, [0.50, 0.52, 0.51], command="make audit")
    assert entry["samples"] == [0.5, 0.52, 0.51]
    assert entry["median"] == 0.51
    assert entry["ci95"][0] <= 0.51 <= entry["ci95"][1]
    assert entry["verdict"] == "pass"
    assert entry["command"] == "make audit"
    assert {"id", "section", "goal", "unit"} <= set(entry)


def test_noise_around_the_bound_is_inconclusive_not_a_flip() -> None:
    entry = checks.evaluate(AT_LEAST, [0.39, 0.47, 0.44, 0.46, 0.42])
    assert entry["verdict"] == "inconclusive"


def test_tally_counts_every_verdict_including_not_measured() -> None:
    targets = [{"verdict": v} for v in ("pass", "pass", "fail", "inconclusive", "not_measured")]
    assert checks.tally(targets) == {"pass": 2, "fail": 1, "inconclusive": 1, "not_measured": 1}
    assert checks.verdict_line(checks.tally(targets)) == (
        "2 pass, 1 fail, 1 inconclusive, 1 not measured"
    )


def test_every_declared_check_has_a_known_section_and_a_goal() -> None:
    sections = {"compression", "cache", "queries", "overall", "resilience", "deploy"}
    for check in checks.CHECKS.values():
        assert check.section in sections
        assert check.goal
