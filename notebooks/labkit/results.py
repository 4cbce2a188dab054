"""What each audit section records, and how the report reads it back.

A section writes `results/<section>.json` in the report folder: its status (ran or skipped,
with the reason), one entry per target with the measured value and the command that
reproduces it, the tables it showed and the figures it saved."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")  # files only; notebooks still show the figures inline
import matplotlib.pyplot as plt


@dataclass
class Target:
    id: str
    name: str
    target: str
    measured: float | None
    unit: str
    passed: bool | None  # None when it could not be measured (skipped)
    command: str
    detail: str = ""


@dataclass
class Section:
    name: str
    report_dir: Path
    profile: str
    status: str = "ran"
    skip_reason: str | None = None
    targets: list[Target] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def command(self) -> str:
        return (
            f"make audit AUDIT_PROFILE={self.profile}  # or: papermill notebooks/{self.name}.ipynb"
            f" out.ipynb -p profile {self.profile} -p report_dir <dir>"
        )

    def target(
        self,
        id: str,
        name: str,
        target: str,
        measured: float | None,
        unit: str,
        passed: bool | None,
        detail: str = "",
    ) -> Target:
        # pandas hands back numpy scalars; the summary must hold plain JSON numbers and booleans.
        found = Target(
            id,
            name,
            target,
            None if measured is None else float(measured),
            unit,
            None if passed is None else bool(passed),
            self.command(),
            detail,
        )
        self.targets.append(found)
        return found

    def skip(self, reason: str) -> None:
        self.status, self.skip_reason = "skipped", reason

    def figure(self, fig: Any, name: str) -> str:
        path = self.report_dir / "figures" / f"{self.name}_{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.figures.append(str(path.relative_to(self.report_dir)))
        return str(path)

    def save(self) -> Path:
        path = self.report_dir / "results" / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["report_dir"] = str(self.report_dir)
        path.write_text(json.dumps(data, indent=2, default=str))
        return path


def load_sections(report_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((report_dir / "results").glob("*.json"))]


def environment(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=root)
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=root
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
        "config": settings or {},
    }


def scrape(url: str, name: str, **labels: str) -> float:
    """Sum of one metric's samples whose labels include `labels`."""
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        is_sample = line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ")
        if is_sample and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def bar(ax: Any, labels: list[str], values: list[float], title: str, unit: str) -> None:
    bars = ax.bar(labels, values, color="#4C78A8")
    ax.set_title(title)
    ax.set_ylabel(unit)
    for b, v in zip(bars, values, strict=True):
        ax.annotate(
            f"{v:,.0f}" if v >= 10 else f"{v:.2f}",
            (b.get_x() + b.get_width() / 2, v),
            ha="center",
            va="bottom",
            fontsize=8,
        )


def new_figure(cols: int = 1, width: float = 6.0) -> tuple[Any, Any]:
    return plt.subplots(1, cols, figsize=(width * cols, 3.6))
