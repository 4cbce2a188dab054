"""`make audit`: run every audit notebook with papermill, then publish the report.

Writes reports/<UTC timestamp>/ with the executed notebooks, results/*.json, figures/*.png,
summary.json, perf-audit.md and perf-audit.html, and points reports/latest at it. Exits
non-zero when a notebook breaks, never because a noisy timing missed a target: the verdict is
in the report, for people to read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import papermill
from labkit.results import environment, load_sections
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = ["compression", "cache", "queries", "overall", "resilience", "deploy"]
BUDGET_S = {"quick": 180, "full": 600}


def run_notebook(name: str, report: Path, parameters: dict[str, object]) -> str | None:
    """Execute one notebook into the report; returns why it broke, or None."""
    try:
        papermill.execute_notebook(
            str(HERE / f"{name}.ipynb"),
            str(report / "notebooks" / f"{name}.ipynb"),
            parameters=parameters,
            cwd=str(HERE),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    except Exception as exc:
        return (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        )
    return None


def summarize(
    report: Path, profile: str, broken: dict[str, str], elapsed: float
) -> dict[str, object]:
    sections = load_sections(report)
    targets = [{"section": s["name"], **t} for s in sections for t in s["targets"]]
    by_name = {s["name"]: s for s in sections}
    for name, why in broken.items():
        by_name.setdefault(name, {"name": name, "status": "broken", "skip_reason": why})
    summary = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile,
        "wall_clock_s": round(elapsed, 1),
        "budget_s": BUDGET_S[profile],
        "environment": environment(),
        "sections": [
            {
                "name": n,
                "status": by_name.get(n, {}).get("status", "missing"),
                "skip_reason": by_name.get(n, {}).get("skip_reason"),
                "notebook": f"notebooks/{n}.ipynb",
            }
            for n in SECTIONS
        ],
        "targets": targets,
        "verdict": {
            "passed": sum(t["passed"] is True for t in targets),
            "failed": sum(t["passed"] is False for t in targets),
            "not_measured": sum(t["passed"] is None for t in targets),
            "broken_sections": sorted(broken),
        },
    }
    (report / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def export_html(report: Path) -> None:
    notebook = nbformat.read(report / "notebooks" / "perf_audit.ipynb", as_version=4)
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    html, _ = exporter.from_notebook_node(notebook)
    (report / "perf-audit.html").write_text(html)


def main() -> int:
    profile = os.environ.get("AUDIT_PROFILE", "full")
    if profile not in BUDGET_S:
        print(f"audit: AUDIT_PROFILE must be quick or full, not {profile!r}", file=sys.stderr)
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = Path(os.environ.get("AUDIT_REPORT_DIR", ROOT / "reports" / stamp)).resolve()
    (report / "notebooks").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    broken: dict[str, str] = {}
    stages = [*SECTIONS, "report"]
    print(f"audit: profile {profile}, writing {report}", flush=True)
    for index, name in enumerate(SECTIONS):
        following = stages[index + 1]
        print(
            f"audit: [{time.monotonic() - started:5.0f}s] stage {index + 1}/{len(stages)} "
            f"{name} (next: {following})",
            flush=True,
        )
        why = run_notebook(name, report, {"profile": profile, "report_dir": str(report)})
        if why:
            broken[name] = why
            print(f"audit: {name} BROKE: {why}", flush=True)
    elapsed = time.monotonic() - started
    summary = summarize(report, profile, broken, elapsed)
    print(f"audit: [{elapsed:5.0f}s] stage {len(stages)}/{len(stages)} report", flush=True)
    why = run_notebook("perf_audit", report, {"report_dir": str(report)})
    if why:
        broken["perf_audit"] = why
        print(f"audit: the report notebook BROKE: {why}", flush=True)
    else:
        export_html(report)
    latest = report.parent / "latest"
    if report.parent == ROOT / "reports":
        latest.unlink(missing_ok=True)
        latest.symlink_to(report.name)
    verdict = summary["verdict"]
    total = time.monotonic() - started
    print(
        f"audit: done in {total:.0f}s (budget {BUDGET_S[profile]}s): "
        f"{verdict['passed']} passed, {verdict['failed']} failed, "  # type: ignore[index]
        f"{verdict['not_measured']} not measured; report {report / 'perf-audit.html'}"
    )  # type: ignore[index]
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
