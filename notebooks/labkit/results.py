"""What each audit section records, and how the report reads it back.

A section writes `results/<section>.json` in the report folder: its status (ran or skipped, with
the reason), one entry per target (see checks.evaluate: per-round samples, median, 95 % interval,
verdict, the command that reproduces it), the configuration of every setup it compared, the
tables it showed and the figures it saved. Raw data (wrk output, Locust CSV/HTML, server logs)
goes under `raw/<section>/` in the same folder."""

from __future__ import annotations

import json
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")  # files only; notebooks still show the figures inline
import matplotlib.pyplot as plt

from harness import postgres as harness_postgres
from harness import redis as harness_redis
from harness.metrics import scrape  # noqa: F401 - re-exported for the notebooks
from labkit import checks
from labkit.checks import rate_percent  # noqa: F401 - re-exported for the notebooks

ROOT = Path(__file__).resolve().parents[2]


def command(section: str, profile: str) -> str:
    """Reproduces one section from the repository root, as printed."""
    return f"AUDIT_PROFILE={profile} AUDIT_SECTIONS={section} make audit"


def redact(settings: dict[str, Any]) -> dict[str, str]:
    """A setup's settings without machine paths, ports or database names: what was configured,
    not where it ran."""
    shown = {}
    for key, value in settings.items():
        text = str(value)
        if re.match(r"^[a-z]+://", text):
            text = re.sub(r"^([a-z]+)://.*$", r"\1://<lab instance>", text)
        elif text.startswith("/") or key.endswith(("_PATH", "_DIR")):
            text = "<work dir>"
        elif "KEY" in key or "TOKEN" in key:
            text = "<lab secret>"
        shown[key] = text
    return shown


@dataclass
class Section:
    name: str
    report_dir: Path
    profile: str
    status: str = "ran"
    skip_reason: str | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)
    setups: dict[str, dict[str, str]] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def raw_dir(self) -> Path:
        path = self.report_dir / "raw" / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def setup(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Records a compared setup's configuration (as given to the service) and returns it."""
        self.setups[name] = redact(settings)
        return settings

    def record(
        self,
        id: str,
        samples: list[float | None] | float | None,
        *,
        reason: str | None = None,
        detail: str = "",
        **extra: Any,
    ) -> dict[str, Any]:
        check = checks.check(id)
        assert check.section == self.name, f"{id} belongs to {check.section}"
        values = samples if isinstance(samples, list) else [samples]
        entry = checks.evaluate(
            check,
            values,
            reason=reason,
            detail=detail,
            command=command(self.name, self.profile),
            extra=extra or None,
        )
        self.targets = [t for t in self.targets if t["id"] != id] + [entry]
        return entry

    def not_measured(self, ids: list[str], reason: str) -> None:
        for id in ids:
            self.record(id, None, reason=reason)

    def skip(self, reason: str) -> None:
        self.status, self.skip_reason = "skipped", reason
        for check in checks.CHECKS.values():
            if check.section == self.name and all(t["id"] != check.id for t in self.targets):
                self.record(check.id, None, reason=reason)

    def figure(self, fig: Any, name: str) -> str:
        path = self.report_dir / "figures" / f"{self.name}_{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.figures.append(path.relative_to(self.report_dir).as_posix())
        return str(path)

    def keep_raw(self) -> None:
        """Lists every raw file the section left under raw/<section>/ (relative links)."""
        base = self.report_dir / "raw" / self.name
        if base.exists():
            self.raw = sorted(
                p.relative_to(self.report_dir).as_posix()
                for p in base.rglob("*")
                if p.is_file() and p.suffix in (".txt", ".csv", ".html", ".log", ".json")
            )

    def print_verdicts(self) -> None:
        for t in self.targets:
            ci = t["ci95"]
            spread = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "—"
            median = f"{t['median']:.4g}" if t["median"] is not None else "—"
            why = f" ({t['reason']})" if t["reason"] else ""
            print(
                f"{t['verdict'].upper():13} {t['title']}: median {median} {t['unit']}, 95 % CI "
                f"{spread}, n={len(t['samples'])}, goal {t['goal']}{why}"
            )
        for note in self.notes:
            print("note:", note)

    def save(self) -> Path:
        self.keep_raw()
        path = self.report_dir / "results" / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "profile": self.profile,
            "status": self.status,
            "skip_reason": self.skip_reason,
            "targets": self.targets,
            "setups": self.setups,
            # Where this section's PostgreSQL and Redis came from (the harness's chain), if used.
            "servers": {"postgresql": harness_postgres.used(), "redis": harness_redis.used()},
            "tables": self.tables,
            "figures": self.figures,
            "raw": self.raw,
            "notes": self.notes,
        }
        path.write_text(json.dumps(data, indent=2, default=str))
        return path


def load_sections(report_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((report_dir / "results").glob("*.json"))]


def environment() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    cpus = (
        Path("/proc/cpuinfo").read_text().count("processor\t:")
        if Path("/proc/cpuinfo").exists()
        else None
    )
    mem_kib = (
        next(
            (
                int(line.split()[1])
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")
            ),
            0,
        )
        if Path("/proc/meminfo").exists()
        else 0
    )
    return {
        "commit": commit.stdout.strip() or None,
        "uncommitted_changes": bool(dirty.stdout.strip()),
        "python": platform.python_version(),
        "machine": {
            "cpus": cpus,
            "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "platform": platform.platform(),
        },
    }


def points(ax: Any, groups: dict[str, list[float]], title: str, unit: str) -> None:
    """Every round as a dot over a bar at the median: the spread is in the figure."""
    labels = list(groups)
    for i, label in enumerate(labels):
        values = [v for v in groups[label] if v is not None]
        if not values:
            continue
        mid = statistics.median(values)
        ax.bar(i, mid, color="#4C78A8", alpha=0.35, width=0.6)
        ax.scatter([i] * len(values), values, color="#1f3b5a", s=14, zorder=3)
        ax.annotate(
            f"{mid:,.0f}" if abs(mid) >= 10 else f"{mid:.2f}",
            (i, mid),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_title(title)
    ax.set_ylabel(unit)


def interval_figure(targets: list[dict[str, Any]], title: str) -> Any:
    """Each target's per-round samples, median and 95 % interval against its goal, one row each."""
    rows = [t for t in targets if t["samples"]]
    fig, axes = plt.subplots(len(rows) or 1, 1, figsize=(7, 0.9 * max(len(rows), 1) + 0.6))
    axes = list(axes) if len(rows) > 1 else [axes]
    for ax, t in zip(axes, rows, strict=False):
        ax.scatter(t["samples"], [0] * len(t["samples"]), color="#1f3b5a", s=14, zorder=3)
        low, high = t["ci95"]
        ax.plot([low, high], [0, 0], color="#4C78A8", linewidth=6, alpha=0.5)
        bound = checks.check(t["id"]).bound
        ax.axvline(bound, color="#E45756", linestyle="--")
        ax.set_yticks([])
        ax.set_title(f"{t['title']} ({t['verdict']}, goal {t['goal']})", fontsize=8, loc="left")
    axes[0].figure.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def metric_names(url: str) -> list[str]:
    """The metric families a service exposes (from its # TYPE lines)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]


def find_metric(url: str, *candidates: str) -> str | None:
    """The first candidate family the service exposes: the lab keeps working while a metric is
    renamed (a counter family `x_total` is listed as `x` in # TYPE)."""
    names = set(metric_names(url))
    for name in candidates:
        if name in names or name.removesuffix("_total") in names:
            return name
    return None


def new_figure(cols: int = 1, width: float = 6.0) -> tuple[Any, Any]:
    return plt.subplots(1, cols, figsize=(width * cols, 3.6))
