"""A sampling profile of a running server for the report: py-spy's collapsed stacks, drawn as a
flame graph (a PNG the report inlines like any figure) and summed into a self-time table.

`record` samples one process while the caller keeps it busy; `parse`, `tree`, `self_time` and
`draw` are pure functions of the collapsed text, so a profile kept from another build (the
committed one from before the hot-path work) is drawn the same way beside this run's."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.load import wrk
from labkit.procs import BIN

PY_SPY = BIN / "py-spy"
_LOCATION = re.compile(r" \((?P<file>[^()]*?):(?P<line>\d+)\)$")
# Frames below the request's own work that every sample shares (the event loop and the CLI).
_ROOT_FRAMES = ("<module>", "main", "run", "serve", "asyncio_run", "Runner.run", "Server.run")


def unavailable() -> str | None:
    """None when py-spy can sample a process here, else why not."""
    if not (PY_SPY.exists() or shutil.which("py-spy")):
        return "py-spy is not installed (the lab dependency group has it: make install)"
    return None


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> str | None:
    """Samples `pid` for `seconds` into `out` (collapsed stacks, one `frame;frame;... count`
    per line). Returns None, or why nothing was recorded."""
    exe = str(PY_SPY) if PY_SPY.exists() else "py-spy"
    args = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    args += ["--rate", str(rate), "--nonblocking", "--format", "raw", "--output", str(out)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0 or not out.exists() or not out.read_text().strip():
        return f"py-spy recorded nothing (exit {done.returncode}): {done.stderr.strip()[-200:]}"
    return None


def under_load(
    server: Any, url: str, headers: dict[str, str], seconds: float, out: Path
) -> str | None:
    """Samples the busiest process of `server` (a harness Process) while wrk keeps `url` busy
    for the whole recording; None, or why nothing was recorded."""
    by_pid = server.cpu_seconds_by_pid()
    if not by_pid:
        return "the server is not running"
    pid = max(by_pid, key=by_pid.get)
    load = threading.Thread(
        target=wrk, args=(url,), kwargs={"seconds": seconds + 1.5, "headers": headers}, daemon=True
    )
    load.start()
    time.sleep(0.5)  # past wrk's connection set-up
    try:
        return record(pid, seconds, out)
    finally:
        load.join()


def frame_name(frame: str) -> str:
    """`send (uvicorn/protocols/http/httptools_impl.py:524)` → `send (httptools_impl.py)`:
    the function and its file, lines merged."""
    match = _LOCATION.search(frame)
    if match is None:
        return frame.strip() or "(native)"
    return f"{frame[: match.start()]} ({Path(match['file']).name})"


def parse(text: str) -> list[tuple[list[str], int]]:
    """Collapsed stacks → (frames root first, samples); the process and thread frames and the
    event loop's own frames under every request are dropped."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        while frames and frames[0].split(" (")[0] in _ROOT_FRAMES:
            frames.pop(0)
        stacks.append((frames or ["(event loop, native code)"], int(count)))
    return stacks


@dataclass
class Node:
    name: str
    samples: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def tree(stacks: list[tuple[list[str], int]]) -> Node:
    root = Node("all")
    for frames, count in stacks:
        root.samples += count
        node = root
        for frame in frames:
            node = node.children.setdefault(frame, Node(frame))
            node.samples += count
    return root


def self_time(stacks: list[tuple[list[str], int]], top: int = 15) -> list[dict[str, Any]]:
    """The functions the samples were in (their own code, not their callees'), largest first."""
    counts: Counter[str] = Counter()
    for frames, count in stacks:
        counts[frames[-1]] += count
    total = sum(counts.values()) or 1
    return [
        {"function": name, "self_%": round(100 * n / total, 1), "samples": n}
        for name, n in counts.most_common(top)
    ]


def draw(ax: Any, root: Node, title: str, *, min_share: float = 0.004) -> None:
    """A flame graph: the root at the bottom, each frame as wide as its share of the samples,
    callees stacked on their caller; labels where they fit."""
    total = root.samples or 1
    palette = ["#f2a65a", "#e4572e", "#f3c969", "#ee964b", "#d95d39", "#f0a202"]
    depth_max = 0

    def place(node: Node, x: float, depth: int) -> None:
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        for child in sorted(node.children.values(), key=lambda n: n.name):
            width = child.samples / total
            if width < min_share:
                x += width
                continue
            ax.barh(
                depth,
                width,
                left=x,
                height=0.95,
                color=palette[zlib.crc32(child.name.encode()) % len(palette)],
                edgecolor="white",
                linewidth=0.3,
            )
            if width > 0.06:
                label = child.name if len(child.name) < width * 200 else child.name.split(" (")[0]
                ax.text(x + 0.003, depth, label[: int(width * 200)], va="center", fontsize=5.5)
            place(child, x, depth + 1)
            x += width

    place(root, 0.0, 0)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, depth_max + 0.6)
    ax.set_yticks([])
    ax.set_xlabel("share of samples")
    ax.set_title(title, fontsize=9)


def figure(profiles: dict[str, list[tuple[list[str], int]]], title: str) -> Any:
    """One flame graph per profile, stacked, titled `title, <name>`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(profiles), 1, figsize=(11, 4.2 * len(profiles)), squeeze=False)
    for ax, (name, stacks) in zip(axes[:, 0], profiles.items(), strict=True):
        draw(ax, tree(stacks), f"{title}, {name}")
    fig.tight_layout()
    return fig
