"""Regressions: two audit runs compared target by target on their per-round samples.

A target regressed when it moved the wrong way by at least `worse_by` (10 % by default) AND the
95 % interval of the ratio head/base (Welch's t on the logarithms of the per-round samples)
excludes 1, i.e. "no change" is not a plausible reading of the samples. A threshold on two medians alone would flag
noise; an interval alone would flag a real but negligible shift. Targets with an exact goal
(`= 50 requests`, `yes`), timed targets with a single sample per run, or with a sample that is
not positive (a cost near zero, an error rate of 0 %), are compared on their verdicts instead:
pass → fail is a regression."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit import stats

WORSE_BY = 0.10


def load(source: Path) -> dict[str, Any]:
    """A report folder (its summary.json) or a summary/baseline JSON file."""
    path = source / "summary.json" if source.is_dir() else source
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def compare_target(
    base: dict[str, Any] | None, head: dict[str, Any] | None, worse_by: float = WORSE_BY
) -> dict[str, Any]:
    target = head or base
    assert target is not None
    row: dict[str, Any] = {
        "id": target["id"],
        "title": target.get("title", target["id"]),
        "unit": target.get("unit", ""),
        "base_median": base.get("median") if base else None,
        "head_median": head.get("median") if head else None,
        "base_verdict": base.get("verdict") if base else None,
        "head_verdict": head.get("verdict") if head else None,
        "ratio": None,
        "ci95": None,
        "change": None,
        "status": "",
        "regressed": False,
    }
    if base is None or head is None:
        row["status"] = "new" if base is None else "gone"
        return row
    if not base.get("samples") or not head.get("samples"):
        row["status"] = "not comparable (not measured)"
        return row
    better = head.get("better", base.get("better"))
    found = None
    # A timed target measured once per run (a deploy's duration) has no spread to test a
    # change against: one sample each would make any difference "significant". Such targets,
    # and ratios between samples that are not all positive (a cost that crosses zero, a 0 %
    # error rate), are compared on their verdicts.
    timed_once = head.get("kind", "timed") == "timed" and (
        len(base["samples"]) < 2 or len(head["samples"]) < 2
    )
    if better is not None and not timed_once and min([*base["samples"], *head["samples"]]) > 0:
        found = stats.ratio_interval(head["samples"], base["samples"])
    if found is None:
        flipped = base["verdict"] == "pass" and head["verdict"] == "fail"
        row["status"] = "regressed (verdict)" if flipped else "same verdict or better"
        row["regressed"] = flipped
        return row
    ratio, (low, high) = found
    row["ratio"], row["ci95"] = ratio, [low, high]
    worse = (1 - ratio) if better == "higher" else (ratio - 1)
    row["change"] = -worse  # positive = better, as a share of the base median
    significant = not (low <= 1 <= high)
    if significant and worse >= worse_by:
        row["status"], row["regressed"] = "REGRESSED", True
    elif significant and -worse >= worse_by:
        row["status"] = "improved"
    elif significant:
        row["status"] = "small change"
    else:
        row["status"] = "no significant change"
    return row


def compare(
    base: dict[str, Any], head: dict[str, Any], worse_by: float = WORSE_BY
) -> list[dict[str, Any]]:
    before = {t["id"]: t for t in base.get("targets", [])}
    after = {t["id"]: t for t in head.get("targets", [])}
    ids = list(dict.fromkeys([*after, *before]))
    return [compare_target(before.get(i), after.get(i), worse_by) for i in ids]


def regressions(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["regressed"]]


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}"


def table(rows: Sequence[dict[str, Any]], base_label: str, head_label: str) -> str:
    lines = [
        f"comparison: base {base_label} → head {head_label} "
        f"(regressed = ≥ {WORSE_BY:.0%} worse and the 95 % interval of head/base excludes 1)",
        f"{'target':34} {'base':>10} {'head':>10} {'head/base':>10} {'95 % CI':>17}  status",
    ]
    for r in rows:
        ci = f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]" if r["ci95"] else "—"
        lines.append(
            f"{r['id'][:34]:34} {_num(r['base_median']):>10} {_num(r['head_median']):>10} "
            f"{_num(r['ratio']):>10} {ci:>17}  {r['status']}"
        )
    found = regressions(rows)
    lines.append(
        f"{len(found)} regressed: {', '.join(r['id'] for r in found)}"
        if found
        else "no significant regression"
    )
    return "\n".join(lines)


def baseline_of(*summaries: dict[str, Any]) -> dict[str, Any]:
    """What a committed baseline keeps of one or more runs of one build: every target's
    per-round samples, pooled over the runs (so the baseline's spread holds the drift between
    runs, which one run's rounds cannot show), no figures, no machine paths. A target's verdict
    is the runs' common verdict, or inconclusive where they differ."""
    latest = summaries[-1]
    keep = ("id", "section", "title", "goal", "unit", "better")
    targets = []
    for target in latest.get("targets", []):
        runs = [t for s in summaries for t in s.get("targets", []) if t.get("id") == target["id"]]
        samples = [x for t in runs for x in (t.get("samples") or [])]
        values = stats.clean(samples)
        ci = stats.interval(values)
        verdicts = {t.get("verdict") for t in runs}
        targets.append(
            {
                **{k: target.get(k) for k in keep},
                "samples": samples,
                "median": stats.median(values),
                "ci95": None if ci is None else [ci[0], ci[1]],
                "verdict": verdicts.pop() if len(verdicts) == 1 else "inconclusive",
            }
        )
    return {
        "generated_at": latest.get("generated_at"),
        "profile": latest.get("profile"),
        "commit": latest.get("environment", {}).get("commit"),
        "machine": latest.get("environment", {}).get("machine"),
        "runs": [
            {
                "generated_at": s.get("generated_at"),
                "commit": s.get("environment", {}).get("commit"),
            }
            for s in summaries
        ],
        "targets": targets,
    }


def previous_report(reports: Path, current: Path | None, profile: str | None) -> Path | None:
    """The newest other report folder with a summary of the same profile, or None. Another
    profile is no base: its sizes and rounds differ (the quick queries section seeds 30,000
    orders, the full one 1,000,000), so the comparison would flag the profile, not the code."""
    found = sorted(
        (p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()),
        key=lambda p: p.name,
        reverse=True,
    )
    candidates = [
        p
        for p in found
        if (p / "summary.json").exists() and (current is None or p.resolve() != current.resolve())
    ]
    same = [p for p in candidates if load(p).get("profile") == profile]
    return same[0] if same else None
