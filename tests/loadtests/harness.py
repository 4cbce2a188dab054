"""A headless Locust run as a subprocess, for the load-test tests (servers and background
workers are the harness's processes). Locust monkey-patches the standard library with gevent
when imported, so it never runs inside pytest."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.procs import BIN, Process
from harness.procs import base_env as clean_env

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
CONFIG = ROOT / "loadtests" / "locust.conf"
STAFF_KEY = "staff-key-for-every-store-0001"
RATE_LIMIT = 10  # requests per client per hour on the limited server


def background(args: list[str], cwd: Path) -> Process:
    """A process in `cwd`, its output in `cwd/output.log` (a file, not a pipe: under load a pipe
    nobody reads fills up and blocks the process), owned by the harness session."""
    return Process(args, clean_env(), cwd, cwd / "output.log")


@dataclass
class LocustRun:
    returncode: int
    output: str
    prefix: Path
    stats: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return {entry["name"] for entry in self.stats}

    def count(self, key: str) -> int:
        return int(self.counters.get("counts", {}).get(key, 0))


def run_locust(host: str, out: Path, *args: str, timeout: float = 60) -> LocustRun:
    """One headless run with every output Locust can write; `--json-file` adds `.json` itself."""
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "run"
    command = [
        str(BIN / "locust"),
        "--config",
        str(CONFIG),
        "-f",
        str(LOCUSTFILE),
        "-H",
        host,
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "--json-file",
        str(prefix),
        "--counters-file",
        f"{prefix}.counters.json",
        *args,
    ]
    done = subprocess.run(
        command, cwd=out, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    run = LocustRun(done.returncode, done.stdout + done.stderr, prefix)
    if Path(f"{prefix}.json").exists():
        run.stats = json.loads(Path(f"{prefix}.json").read_text())
    if Path(f"{prefix}.counters.json").exists():
        run.counters = json.loads(Path(f"{prefix}.counters.json").read_text())
    return run
