"""reports/trend.html: every target across every report in reports/, by run and commit, each
run's median with its 95 % interval, coloured by verdict. Self-contained (images inlined)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLOURS = {"pass": "#54A24B", "fail": "#E45756", "inconclusive": "#F58518", "not_measured": "#999"}


def runs(reports: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(reports.glob("*/summary.json")):
        if path.parent.is_symlink():
            continue
        summary = json.loads(path.read_text())
        summary["folder"] = path.parent.name
        found.append(summary)
    return sorted(found, key=lambda s: str(s.get("generated_at")))


def series(summaries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Target id → one point per run that measured it (label, median, interval, verdict)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for index, summary in enumerate(summaries):
        commit = (summary.get("environment", {}).get("commit") or "?")[:7]
        label = f"{summary['folder'][:13]}\n{commit} {summary.get('profile', '')}"
        for t in summary.get("targets", []):
            if t.get("median") is None:
                continue
            out.setdefault(t["id"], []).append(
                {
                    "run": index,
                    "label": label,
                    "median": t["median"],
                    "ci95": t.get("ci95") or [t["median"], t["median"]],
                    "verdict": t.get("verdict", "not_measured"),
                    "title": t.get("title", t["id"]),
                    "goal": t.get("goal", ""),
                    "unit": t.get("unit", ""),
                }
            )
    return out


def _png(points: list[dict[str, Any]], labels: list[str]) -> str:
    fig, ax = plt.subplots(figsize=(8, 2.6))
    for p in points:
        low, high = p["ci95"]
        ax.errorbar(
            p["run"],
            p["median"],
            yerr=[[p["median"] - low], [high - p["median"]]],
            fmt="o",
            color=COLOURS.get(p["verdict"], "#999"),
            capsize=3,
        )
    ax.set_xticks(range(len(labels)), labels, fontsize=6)
    ax.set_ylabel(points[0]["unit"])
    ax.set_title(f"{points[0]['title']} (goal {points[0]['goal']})", fontsize=9, loc="left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def write(reports: Path) -> Path | None:
    summaries = runs(reports)
    if not summaries:
        return None
    labels = [
        f"{s['folder'][:13]}\n{(s.get('environment', {}).get('commit') or '?')[:7]}"
        for s in summaries
    ]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Performance audit trend</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}</style>",
        f"<h1>Performance audit trend</h1><p>{len(summaries)} runs in reports/. Each point is "
        "one run's median with its 95 % interval; green pass, red fail, orange inconclusive.</p>",
    ]
    for target, points in series(summaries).items():
        parts.append(f"<h3 id='{html.escape(target)}'>{html.escape(target)}</h3>")
        parts.append(
            f"<img alt='{html.escape(target)}' src='data:image/png;base64,{_png(points, labels)}'>"
        )
    path = reports / "trend.html"
    path.write_text("\n".join(parts))
    return path
