"""Load generators as subprocesses: wrk (independent of our code, for ceilings and A/B
throughput) and Locust (scenarios). Each run reports whether the generator itself was
saturated, because it shares this machine's cores with the server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from labkit.procs import BIN, Process

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
SATURATED_CPU_SHARE = 0.9


@dataclass
class HttpRun:
    tool: str
    url: str
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    generator_cpu_share: float  # of one core; near 1.0 means the generator was the bottleneck
    server_cpu_s: float
    wall_s: float = 0.0

    @property
    def generator_bound(self) -> bool:
        return self.generator_cpu_share >= SATURATED_CPU_SHARE

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "generator_bound": self.generator_bound}


def wrk_available() -> str | None:
    return None if shutil.which("wrk") else "wrk is not installed (apt-get install wrk)"


def _duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * UNITS[unit]


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int = 32,
    headers: dict[str, str] | None = None,
    server: Process | None = None,
    cpus: set[int] | None = None,
    save: Path | None = None,
) -> HttpRun:
    """One wrk run; `cpus` pins wrk to those cores, `save` keeps its raw output."""
    script = Path(__file__).with_name("wrk_percentiles.lua")
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    for name, value in (headers or {}).items():
        args[1:1] = ["-H", f"{name}: {value}"]
    if cpus:
        args = ["taskset", "-c", ",".join(str(c) for c in sorted(cpus)), *args]
    cpu_before = server.cpu_seconds() if server else 0.0
    run = measured(args)
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.write_text(f"$ {' '.join(args)}\n{run.output}")
    if run.returncode != 0:
        raise RuntimeError(f"wrk exited {run.returncode}: {run.output[-2000:]}")
    out = run.output
    # wrk pads some values ("1.00s "): allow trailing blanks.
    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, flags=re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return HttpRun(
        tool="wrk",
        url=url,
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_duration_ms(percentiles["50"]),
        p90_ms=_duration_ms(percentiles["90"]),
        p95_ms=int(re.search(r"^P95_US (\d+)$", out, flags=re.M).group(1)) / 1000,  # type: ignore[union-attr]
        p99_ms=_duration_ms(percentiles["99"]),
        errors=errors + (int(non2xx.group(1)) if non2xx else 0),
        generator_cpu_share=run.cpu_share,
        server_cpu_s=(server.cpu_seconds() - cpu_before) if server else 0.0,
        wall_s=run.wall_s,
    )


@dataclass
class Measured:
    returncode: int
    output: str
    wall_s: float
    cpu_share: float  # the child's own CPU time over its wall time, in cores


def measured(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Measured:
    """Run a command and read its own CPU use from wait4(), so no other child's time mixes in."""
    with tempfile.TemporaryFile() as output:
        started = time.monotonic()
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(process.returncode, text, wall, cpu / wall if wall > 0 else 0.0)


def locust_command(
    locustfile: Path,
    host: str,
    out_dir: Path,
    *,
    users: int,
    spawn_rate: float,
    seconds: float,
    html: bool = False,
) -> list[str]:
    """A headless Locust run that always ends by itself (`-t`), keeps its CSV and JSON stats in
    `out_dir` (and its HTML page with `html`), prints only the summary and never fails the
    caller on request errors, which the lab counts itself."""
    return [
        str(BIN / "locust"),
        "-f",
        str(locustfile),
        "--headless",
        "--host",
        host,
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        f"{max(1, round(seconds))}s",
        "--csv",
        str(out_dir / "locust"),
        *(["--html", str(out_dir / "locust.html")] if html else []),
        "--json-file",
        str(out_dir / "locust"),
        "--exit-code-on-error",
        "0",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]


def locust(
    host: str,
    *,
    out_dir: Path,
    tags: list[str] | None = None,
    users: int,
    spawn_rate: float,
    seconds: float,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    server: Process | None = None,
    user_classes: list[str] | None = None,
) -> dict[str, Any]:
    """Runs Locust headless as a subprocess (it cannot be imported inside a kernel) and
    returns its JSON stats plus what this run cost the generator and the server."""
    out_dir.mkdir(parents=True, exist_ok=True)
    locustfile = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
    args = locust_command(
        locustfile, host, out_dir, users=users, spawn_rate=spawn_rate, seconds=seconds, html=True
    )
    if tags:
        args += ["--tags", *tags]
    counters_file = out_dir / "counters.json"
    if "--counters-file" not in (extra or []):
        args += ["--counters-file", str(counters_file)]
    args += extra or []
    args += user_classes or []
    cpu_before = server.cpu_seconds() if server else 0.0
    run = measured(args, env=env, cwd=locustfile.parent)
    (out_dir / "locust.log").write_text(run.output)
    if run.returncode != 0:
        raise RuntimeError(f"locust exited {run.returncode}: {run.output[-2000:]}")
    stats = json.loads((out_dir / "locust.json").read_text())
    return {
        "stats": stats,
        # Scenario counters and percentiles to 0.1 ms (loadtests/common/counters.py), when written.
        "counters": json.loads(counters_file.read_text()) if counters_file.exists() else {},
        "generator_cpu_share": run.cpu_share,
        "server_cpu_s": (server.cpu_seconds() - cpu_before) if server else 0.0,
        "wall_s": run.wall_s,
    }


def place_order(url: str, store_id: str) -> dict[str, Any]:
    """One customer order at `store_id` (its first available item, the first bookable slot of
    the next day that has one, from tomorrow): the created order, with its `order_token`."""
    with httpx.Client(base_url=url, timeout=10) as http:
        menu = http.get(f"/v1/stores/{store_id}/menu").json()["items"]
        item = next(i["id"] for i in menu if i["available"])
        for ahead in range(1, 8):
            day = (date.today() + timedelta(days=ahead)).isoformat()
            found = http.get(f"/v1/stores/{store_id}/slots", params={"date": day}).json()
            slot = next((s["start"] for s in found["items"] if s["bookable"]), None)
            if slot is not None:
                break
        else:
            raise RuntimeError(f"store {store_id} has no bookable slot in the next 7 days")
        created = http.post(
            "/v1/orders",
            json={
                "store_id": store_id,
                "pickup_slot_start": slot,
                "customer": {"name": "Lab Poller", "phone": "+15550100"},
                "items": [{"menu_item_id": item, "quantity": 1}],
            },
        )
        created.raise_for_status()
        order: dict[str, Any] = created.json()
        return order
