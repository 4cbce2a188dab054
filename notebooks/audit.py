"""`make audit`: run the audit notebooks with papermill, publish the report, compare with the run
before. Also `audit.py compare BASE HEAD` (make audit-compare) and `audit.py baseline [REPORT ...]`
(make audit-baseline).

Writes reports/<UTC timestamp>/ with the executed notebooks, results/*.json, figures/*.png,
raw/ (wrk output, Locust CSV/HTML, server logs), summary.json, comparison.txt, perf-audit.md and
perf-audit.html (opens offline), points reports/latest at it and redraws reports/trend.html.
Exits non-zero when a notebook breaks, never because a target missed its goal: the verdicts are
in the report, for people to read. Run from the repository root (paths are taken from there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import papermill
from labkit import checks, compare, trend
from labkit.results import environment, load_sections
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORTS = ROOT / "reports"
BASELINE = REPORTS / "baseline.json"
SECTIONS = ["compression", "cache", "queries", "overall", "resilience", "deploy"]
# Sections whose targets are error rates, counts, sizes and availability, not speed: they run
# side by side once every timed section has finished, so they never disturb a throughput trial.
# The timed ones run one at a time on an otherwise idle machine. (Compression times gzip levels
# with wrk in the full profile only.)
UNTIMED = {"quick": {"compression", "resilience", "deploy"}, "full": {"resilience", "deploy"}}
BUDGET_S = {"quick": 180, "full": 600}
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Performance audit</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
img {{ max-width: 100%; }} pre {{ background: #f6f6f6; padding: 0.5em; overflow-x: auto; }}
</style></head><body>
{body}
</body></html>
"""


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
        text = str(exc).strip()
        return f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"
    return None


def run_side_by_side(names: list[str], report: Path, profile: str) -> dict[str, str | None]:
    """Each notebook in a process of its own (its own kernel and harness session), all at once;
    returns, per notebook, why it broke or None."""
    children = {
        name: subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "section", name, str(report), profile],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    }
    outcome: dict[str, str | None] = {}
    for name, child in children.items():
        output, _ = child.communicate()
        lines = [line for line in output.splitlines() if line.startswith("BROKE: ")]
        outcome[name] = (
            lines[-1].removeprefix("BROKE: ")
            if lines
            else None
            if child.returncode == 0
            else f"exit {child.returncode}"
        )
    return outcome


def section_command(name: str, report: str, profile: str) -> int:
    """One notebook into a report (what run_side_by_side starts); prints why it broke."""
    why = run_notebook(name, Path(report), {"profile": profile, "report_dir": report})
    if why:
        print(f"BROKE: {why}", flush=True)
        return 1
    return 0


def summarize(
    report: Path,
    profile: str,
    ran: list[str],
    broken: dict[str, str],
    elapsed: float,
    machine: dict[str, object],
) -> dict[str, object]:
    sections = load_sections(report)
    by_name = {s["name"]: s for s in sections}
    targets = [t for s in sections for t in s["targets"]]
    for name in ran:  # a broken section's targets are counted, never dropped
        if name in broken:
            seen = {t["id"] for t in targets}
            targets += [
                checks.evaluate(c, [], reason=f"section broke: {broken[name]}")
                for c in checks.CHECKS.values()
                if c.section == name and c.id not in seen
            ]
    summary = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile,
        "wall_clock_s": round(elapsed, 1),
        "budget_s": BUDGET_S[profile],
        "environment": {
            **machine,
            "setups": {name: by_name[name].get("setups", {}) for name in ran if name in by_name},
            "servers": {
                server: sorted(
                    {kind for s in sections for kind in s.get("servers", {}).get(server, [])}
                )
                for server in ("postgresql", "redis")
            },
        },
        "sections": [
            {
                "name": n,
                "status": "broken" if n in broken else by_name.get(n, {}).get("status", "missing"),
                "skip_reason": broken.get(n) or by_name.get(n, {}).get("skip_reason"),
                "notebook": f"notebooks/{n}.ipynb",
                "raw": by_name.get(n, {}).get("raw", []),
            }
            for n in ran
        ],
        "targets": targets,
        "verdict": {**checks.tally(targets), "broken_sections": sorted(broken)},
    }
    (report / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def export_html(report: Path) -> None:
    """Offline HTML: nbconvert's `basic` template (no require.js, no MathJax from a CDN) in a
    plain page; figures are already inlined as data URIs by the notebook's outputs."""
    notebook = nbformat.read(report / "notebooks" / "perf_audit.ipynb", as_version=4)
    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(notebook)
    (report / "perf-audit.html").write_text(PAGE.format(body=body))


def comparison(report: Path, summary: dict[str, object]) -> str:
    """Compares this run with BASE, else the previous report of its profile, else the committed
    baseline when it is of that profile."""
    chosen = os.environ.get("BASE")
    base_path = (
        Path(chosen)
        if chosen
        else compare.previous_report(REPORTS, report, str(summary["profile"]))
        if REPORTS.exists()
        else None
    )
    baseline_fits = (
        BASELINE.exists() and compare.load(BASELINE).get("profile") == summary["profile"]
    )
    if base_path is None and baseline_fits:
        base_path = BASELINE
    if base_path is None or not base_path.exists():
        text = (
            f"comparison: no earlier {summary['profile']} report and no reports/baseline.json "
            "of that profile to compare with"
        )
    else:
        base = compare.load(base_path)
        rows = compare.compare(base, summary)
        label = base_path.name if base_path != BASELINE else "reports/baseline.json"
        text = compare.table(rows, label, report.name)
        (report / "comparison.json").write_text(
            json.dumps({"base": label, "rows": rows}, indent=2, default=str)
        )
    (report / "comparison.txt").write_text(text + "\n")
    return text


def audit() -> int:
    profile = os.environ.get("AUDIT_PROFILE", "full")
    if profile not in BUDGET_S:
        print(f"audit: AUDIT_PROFILE must be quick or full, not {profile!r}", file=sys.stderr)
        return 2
    chosen = [s for s in os.environ.get("AUDIT_SECTIONS", "").replace(",", " ").split() if s]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        print(f"audit: unknown AUDIT_SECTIONS {unknown}; known: {SECTIONS}", file=sys.stderr)
        return 2
    ran = [s for s in SECTIONS if not chosen or s in chosen]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = Path(os.environ.get("AUDIT_REPORT_DIR") or REPORTS / stamp).resolve()
    (report / "notebooks").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    machine = environment()  # the commit measured is the one checked out when the run starts
    broken: dict[str, str] = {}
    timed = [name for name in ran if name not in UNTIMED[profile]]
    untimed = [name for name in ran if name in UNTIMED[profile]]
    stages = [*timed, *untimed, "report"]
    shown = report.relative_to(ROOT) if report.is_relative_to(ROOT) else report
    print(f"audit: profile {profile}, writing {shown}", flush=True)
    for index, name in enumerate(timed):
        print(
            f"audit: [{time.monotonic() - started:5.0f}s] stage {index + 1}/{len(stages)} "
            f"{name} (next: {stages[index + 1]})",
            flush=True,
        )
        why = run_notebook(name, report, {"profile": profile, "report_dir": str(report)})
        if why:
            broken[name] = why
            print(f"audit: {name} BROKE: {why}", flush=True)
    if untimed:
        print(
            f"audit: [{time.monotonic() - started:5.0f}s] stages {len(timed) + 1}-{len(ran)}/"
            f"{len(stages)} {' + '.join(untimed)} side by side (untimed)",
            flush=True,
        )
        for name, why in run_side_by_side(untimed, report, profile).items():
            if why:
                broken[name] = why
                print(f"audit: {name} BROKE: {why}", flush=True)
    elapsed = time.monotonic() - started
    summary = summarize(report, profile, ran, broken, elapsed, machine)
    print(f"audit: [{elapsed:5.0f}s] stage {len(stages)}/{len(stages)} report", flush=True)
    text = comparison(report, summary)
    why = run_notebook("perf_audit", report, {"report_dir": str(report)})
    if why:
        broken["perf_audit"] = why
        print(f"audit: the report notebook BROKE: {why}", flush=True)
    else:
        export_html(report)
    if report.parent == REPORTS:
        latest = REPORTS / "latest"
        latest.unlink(missing_ok=True)
        latest.symlink_to(report.name)
        trend.write(REPORTS)
    total = time.monotonic() - started
    print(text)
    print(
        f"audit: done in {total:.0f}s (budget {BUDGET_S[profile]}s): "
        f"{checks.verdict_line(summary['verdict'])}; "  # type: ignore[arg-type]
        f"report {shown / 'perf-audit.html'}"
    )
    return 1 if broken else 0


def compare_command(base: str, head: str) -> int:
    base_path, head_path = Path(base), Path(head)
    for path in (base_path, head_path):
        if not path.exists():
            print(f"audit-compare: {path} does not exist", file=sys.stderr)
            return 2
    rows = compare.compare(compare.load(base_path), compare.load(head_path))
    print(compare.table(rows, base, head))
    return 1 if compare.regressions(rows) else 0


def baseline_command(sources: list[str]) -> int:
    summaries = [compare.load(Path(source)) for source in sources]
    BASELINE.write_text(json.dumps(compare.baseline_of(*summaries), indent=2) + "\n")
    print(f"audit-baseline: wrote reports/baseline.json from {', '.join(sources)}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["compare"] and len(argv) == 3:
        return compare_command(argv[1], argv[2])
    if argv[:1] == ["section"] and len(argv) == 4 and argv[1] in SECTIONS:
        return section_command(argv[1], argv[2], argv[3])
    if argv[:1] == ["baseline"]:
        return baseline_command(argv[1:] or ["reports/latest"])
    if argv:
        print("usage: audit.py | audit.py compare BASE HEAD | audit.py baseline [REPORT ...]")
        return 2
    return audit()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
