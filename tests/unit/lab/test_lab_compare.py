from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from labkit import compare


def target(
    id: str, samples: list[float], better: str | None = "higher", verdict: str = "pass"
) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "id": id,
        "title": id,
        "unit": "\u00d7",
        "better": better,
        "samples": samples,
        "median": ordered[len(ordered) // 2] if samples else None,
        "verdict": verdict,
    }


@pytest.mark.parametrize(
    ("baseline", "current", "regressed", "status"),
    [
        pytest.param(
            [0.50, 0.51, 0.49, 0.50, 0.52],
            [0.30, 0.31, 0.29, 0.30, 0.32],
            True,
            "REGRESSED",
            id="a clear slowdown is a regression",
        ),
        pytest.param(
            [0.50, 0.47, 0.53],
            [0.48, 0.52, 0.50],
            False,
            "no significant change",
            id="noise of the same build is not a regression",
        ),
        pytest.param(
            [1.00, 1.00, 1.01, 0.99, 1.00],
            [0.95, 0.95, 0.96, 0.94, 0.95],
            False,
            "small change",
            id="a significant but small change is not a regression",
        ),
    ],
)
def test_a_change_is_a_regression_only_when_clear_and_large_enough(
    baseline: list[float], current: list[float], regressed: bool, status: str
) -> None:
    row = compare.compare_target(target("t", baseline), target("t", current))
    assert row["regressed"] is regressed
    assert row["status"] == status


def test_lower_is_better_targets_regress_upwards() -> None:
    base = target("cost", [5.0, 5.2, 4.9], better="lower")
    head = target("cost", [9.0, 9.5, 8.8], better="lower")
    assert compare.compare_target(base, head)["regressed"] is True
    assert compare.compare_target(head, base)["status"] == "improved"


def test_exact_goals_compare_verdicts() -> None:
    base = target("limit", [50.0], better=None, verdict="pass")
    head = target("limit", [51.0], better=None, verdict="fail")
    assert compare.compare_target(base, head)["regressed"] is True
    assert compare.compare_target(base, base)["regressed"] is False


def test_a_zero_base_falls_back_to_the_verdict() -> None:
    base = target("errors", [0.0], better="lower", verdict="pass")
    head = target("errors", [0.05], better="lower", verdict="pass")
    assert compare.compare_target(base, head)["regressed"] is False


def test_unmeasured_new_and_gone_targets_never_regress() -> None:
    rows = compare.compare(
        {"targets": [target("a", [1.0]), target("gone", [1.0])]},
        {"targets": [target("a", [], verdict="not_measured"), target("new", [1.0])]},
    )
    status = {r["id"]: r["status"] for r in rows}
    assert status == {"a": "not comparable (not measured)", "new": "new", "gone": "gone"}
    assert compare.regressions(rows) == []


def test_the_table_names_the_regressed_targets() -> None:
    rows = compare.compare(
        {"targets": [target("hot", [1.0, 1.0, 1.02])]},
        {"targets": [target("hot", [0.5, 0.52, 0.5])]},
    )
    text = compare.table(rows, "base", "head")
    assert "REGRESSED" in text
    assert "1 regressed: hot" in text


def test_baseline_keeps_samples_and_no_paths(tmp_path: Path) -> None:
    summary = {
        "generated_at": "2026-12-02T10:00:00+00:00",
        "profile": "quick",
        "environment": {"commit": "abc", "machine": {"cpus": 2}},
        "targets": [{**target("hot", [1.0, 1.1]), "command": "make audit", "detail": "x"}],
    }
    baseline = compare.baseline_of(summary)
    assert baseline["targets"][0]["samples"] == [1.0, 1.1]
    assert "command" not in baseline["targets"][0]
    (tmp_path / "b.json").write_text(json.dumps(baseline))
    assert compare.load(tmp_path / "b.json")["commit"] == "abc"


def test_previous_report_prefers_the_newest_of_the_same_profile(tmp_path: Path) -> None:
    for name, profile in (
        ("20261201T0000Z", "quick"),
        ("20261202T0000Z", "full"),
        ("20261203T0000Z", "quick"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"profile": profile}))
    current = tmp_path / "20261203T0000Z"
    assert compare.previous_report(tmp_path, current, "quick") == tmp_path / "20261201T0000Z"
    assert compare.previous_report(tmp_path, current, "full") == tmp_path / "20261202T0000Z"
    # A run of another profile is no base: nothing rather than a comparison of profiles.
    assert compare.previous_report(tmp_path, tmp_path / "20261202T0000Z", "full") is None


def test_a_cost_whose_rounds_cross_zero_is_compared_on_its_verdict() -> None:
    base = target("limiter", [-3.0, 4.0, 5.0], better="lower", verdict="inconclusive")
    head = target("limiter", [2.0, 9.0, 30.0], better="lower", verdict="inconclusive")
    row = compare.compare_target(base, head)
    assert row["ratio"] is None
    assert row["regressed"] is False


def test_a_timed_target_measured_once_per_run_is_compared_on_its_verdict() -> None:
    # A deploy's duration: one sample a run, 25 % apart between two runs of one commit.
    base = {**target("deploy_time", [7.3], better="lower"), "kind": "timed"}
    head = {**target("deploy_time", [9.7], better="lower"), "kind": "timed"}
    row = compare.compare_target(base, head)
    assert row["regressed"] is False
    assert row["status"] == "same verdict or better"
    failed = {**head, "verdict": "fail"}
    assert compare.compare_target(base, failed)["regressed"] is True


def test_a_baseline_of_several_runs_pools_their_samples_so_drift_between_runs_counts() -> None:
    def run(stamp: str, samples: list[float], verdict: str) -> dict[str, Any]:
        found = {**target("hot", samples), "verdict": verdict}
        return {"generated_at": stamp, "environment": {"commit": "abc"}, "targets": [found]}

    pooled = compare.baseline_of(
        run("2026-12-08T01:00:00+00:00", [3.2, 3.3, 3.3], "pass"),
        run("2026-12-08T02:00:00+00:00", [2.9, 3.0, 3.0], "pass"),
        run("2026-12-08T03:00:00+00:00", [3.0, 3.1, 3.1], "inconclusive"),
    )
    (hot,) = pooled["targets"]
    assert hot["samples"] == [3.2, 3.3, 3.3, 2.9, 3.0, 3.0, 3.0, 3.1, 3.1]
    assert hot["verdict"] == "inconclusive"  # the runs disagreed
    assert len(pooled["runs"]) == 3
    # A run 7 % below the first one alone is a significant change against that run's tight
    # interval; against the pooled runs it is within their drift.
    head = target("hot", [3.0, 3.0, 3.05])
    alone = compare.compare_target(run("x", [3.2, 3.3, 3.3], "pass")["targets"][0], head, 0.05)
    assert alone["regressed"]
    assert not compare.compare_target(hot, head, 0.05)["regressed"]
