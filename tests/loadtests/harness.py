"""Processes for the load-test tests: a server or worker in the background, and a headless
Locust run as a subprocess. Locust monkey-patches the standard library with gevent when
imported, so it never runs inside pytest. Background output goes to a file, not a pipe: under
load a pipe nobody reads fills up and blocks the process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
CONFIG = ROOT / "loadtests" / "locust.conf"
STAFF_KEY = "staff-key-for-every-store-0001"
RATE_LIMIT = 10  # requests per client per hour on the limited server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    # Nothing from the developer's environment (LOCUST_*, PICKUP_STAFF_KEY, .env) leaks in.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    return {**env, **values}


@dataclass
class Background:
    """A process started in `cwd`, its output in `cwd/output.log`, stopped at teardown."""

    args: list[str]
    cwd: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str | None = None, timeout: float = 20) -> Background:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with (self.cwd / "output.log").open("wb") as log:
            self.process = subprocess.Popen(
                self.args, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while ready_url and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited: {self.output()}")
            try:
                httpx.get(ready_url, timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        if ready_url:
            self.stop()
            raise RuntimeError(f"{ready_url} did not answer in {timeout} s: {self.output()}")
        return self

    def output(self) -> str:
        return (self.cwd / "output.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


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
